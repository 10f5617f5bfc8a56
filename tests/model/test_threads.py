"""Core sharing between concurrent heavy steps: claim files per live PID, the SSDA_THREADS knob."""

import os
import subprocess
import sys

import torch

from ssda_model import threads


def test_live_claims_split_the_cores_and_dead_ones_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv(threads.RUNTIME_ENV, str(tmp_path))
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    folder = threads.claims_folder()
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (folder / f"{int(dead.stdout)}.claim").touch()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            (folder / f"{other.pid}.claim").touch()
            before = torch.get_num_threads()
            with threads.share_cores() as share:
                assert share.threads == 2 == torch.get_num_threads()  # this process and the sleeping one
                with threads.share_cores() as nested:
                    assert nested is share  # one claim per process
            assert torch.get_num_threads() == before
            assert sorted(p.name for p in folder.iterdir()) == [f"{other.pid}.claim"]
        finally:
            other.kill()


def test_a_user_set_omp_num_threads_caps_the_share(tmp_path, monkeypatch):
    monkeypatch.setenv(threads.RUNTIME_ENV, str(tmp_path))
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    assert threads.threads_for_share() == 1


def test_ssda_threads_forces_the_count(tmp_path, monkeypatch):
    monkeypatch.setenv(threads.RUNTIME_ENV, str(tmp_path))
    monkeypatch.setenv(threads.THREADS_ENV, "1")
    with threads.share_cores() as share:
        assert share.threads == 1 == torch.get_num_threads()


def _openmp_settings_after_import(**given: str) -> list[str]:
    """GOMP_SPINCOUNT, OMP_WAIT_POLICY and whether torch had loaded, in a process that imports
    ssda_model with `given` as its only OpenMP settings."""
    names = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
    env = {k: v for k, v in os.environ.items() if k not in names}
    probe = (
        "import ssda_model, os, sys; "
        + f"print(*(os.environ.get(k, '-') for k in {names}), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env | given, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_importing_ssda_model_bounds_openmp_spinning_before_torch_loads():
    assert _openmp_settings_after_import() == ["1000", "-", "False"]


def test_an_openmp_wait_setting_of_the_users_own_wins():
    assert _openmp_settings_after_import(OMP_WAIT_POLICY="PASSIVE") == ["-", "PASSIVE", "False"]
    assert _openmp_settings_after_import(GOMP_SPINCOUNT="500") == ["500", "-", "False"]
