"""bench/end_to_end.py: both sides of the speed comparison read the same matrices, ours runs as
`python -m ssda_model fit` and the reference's time is split where its lines say; bench/gpu_check.py
installs on the GPU machine only the releases it lacks."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "end_to_end.py"


def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def end_to_end():
    return bench_module("end_to_end")


def test_both_layouts_hold_identical_matrices_labels_and_genes(tmp_path, end_to_end):
    rng = np.random.default_rng(0)
    genes = [str(g) for g in rng.choice(100_000, 40, replace=False)]
    source = (rng.standard_normal((30, 40)).astype(np.float32) * 3, rng.integers(0, 2, 30))
    target = (rng.standard_normal((12, 40)).astype(np.float32) / 7, rng.integers(0, 2, 12))
    ours = end_to_end.write_inputs(tmp_path, "Gefitinib", source, target, genes)
    for path, (x, y), name in zip(ours, (source, target), ("source", "target"), strict=True):
        h5ad = ad.read_h5ad(path)
        csv_x, csv_y = end_to_end.read_reference_layout(tmp_path, "Gefitinib", name)
        assert h5ad.X.dtype == np.float32 and np.array_equal(h5ad.X, x)
        assert np.array_equal(csv_x, h5ad.X), "the CSV's 9 digits give back every float32"
        assert np.array_equal(csv_y, y) and np.array_equal(h5ad.obs["response"].to_numpy(), y)
        assert list(h5ad.var_names) == genes


def test_the_reference_s_time_is_split_at_its_marker_lines(end_to_end):
    lines = [(2.0, "para: _drug_Gefitinib\n"), (2.5, "device: cpu\n"), (3.0, "Epoch:0 Phase:train\n")]
    lines += [(12.5, "Sampling Method: weight\n"), (12.5, "Transfer ssda finished\n")]
    lines += [(13.0, "Test Performance -> Loss\n"), (13.1, "para: _drug_Gefitinib\n")]
    lines += [(13.4, "device: cpu\n")]
    lines += [(23.4, "Sampling Method: weight\n"), (24.0, "Test Performance -> Loss\n")]
    phases = end_to_end.reference_phases(lines)
    expected = {"start-up": 2.0, "read": 0.8, "train": 20.0, "score": 1.1, "repetitions": 2}
    assert phases == pytest.approx(expected)
    with pytest.raises(RuntimeError, match="lacks a repetition"):
        end_to_end.reference_phases(lines[:-1])


@pytest.mark.parametrize(
    ("given", "expected"), [({}, ["1000", "-"]), ({"GOMP_SPINCOUNT": "500"}, ["500", "500"])]
)
def test_both_sides_run_in_the_users_environment_not_the_one_importing_ssda_model_made(given, expected):
    """The reference gets no OpenMP setting ssda_model made in the bench; one the user gave stays."""
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}}
    probe = (
        f"import os, sys; sys.path.insert(0, {str(BENCH.parent)!r}); import end_to_end; "
        "print(os.environ['GOMP_SPINCOUNT'], end_to_end.user_environment().get('GOMP_SPINCOUNT', '-'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env | given, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == expected


def test_ours_runs_as_the_ssda_command_s_module_and_reports_its_phases(tmp_path, end_to_end):
    """The bench's `ssda fit` needs no installed console script (the GPU machine has none)."""
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(60)]
    source = (rng.standard_normal((30, 60)).astype(np.float32), np.tile([0, 1], 15))
    target = (rng.standard_normal((12, 60)).astype(np.float32), np.tile([0, 1], 6))
    end_to_end.write_inputs(tmp_path, "Gefitinib", source, target, genes)
    run = end_to_end.run_ours(tmp_path, repetitions=1, epochs=1, threads=1, device="cpu", method="ssda")
    assert run["repetitions"] == 1 and run["wall"] > run["train"] > 0
    assert {"start-up", "read", "prepare", "train", "score", "save"} <= run.keys()
    assert (tmp_path / "model" / "metrics.json").exists()


def test_the_gpu_check_installs_only_the_releases_this_python_lacks(tmp_path):
    gpu_check = bench_module("gpu_check")
    held = f"numpy-{np.__version__}-cp312-cp312-manylinux2014_x86_64.whl"
    other = "numpy-0.0.1-py3-none-any.whl"
    absent = "no_such_distribution_here-1.0-py3-none-any.whl"
    for name in (held, other, absent):
        (tmp_path / name).touch()
    assert [w.name for w in gpu_check.to_install(tmp_path)] == [absent, other]
