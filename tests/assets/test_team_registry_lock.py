"""The champion rule's compare-and-set under concurrency, on a real sqlite MLflow store (embedded
mode; the team tests cover the PostgreSQL advisory lock)."""

import threading
import time

import pytest
from mlflow import MlflowClient

from ssda_assets.registry import versions
from ssda_assets.registry.lock import LOCK_ENV, RegistryBusy, lock_target, registry_lock
from ssda_assets.registry.versions import CHALLENGER, CHAMPION, apply_aliases

NAME = "ssda-gefitinib-race"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCK_ENV, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    for auc in (0.5, 0.7, 0.9):
        client.create_model_version(
            NAME, source=str(tmp_path), tags={"auc": repr(auc), "basis": "strict/target"}
        )
    apply_aliases(client, NAME, 1, 0.5, "strict/target")
    return client


def test_two_registrations_at_once_take_turns_and_the_better_one_is_champion(client, monkeypatch):
    reads = versions._current_champion

    def slow_read(
        *args, **kwargs
    ):  # widen the read-compare-write window: without the lock both would read v1
        found = reads(*args, **kwargs)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(versions, "_current_champion", slow_read)
    audits = {}
    threads = [
        threading.Thread(
            target=lambda v=v, s=s: audits.__setitem__(
                v, apply_aliases(client, NAME, v, s, "strict/target").audit
            )
        )
        for v, s in ((3, 0.9), (2, 0.7))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(client.get_model_version_by_alias(NAME, CHAMPION).version) == 3
    assert (
        int(client.get_model_version_by_alias(NAME, CHALLENGER).version) == 3
    )  # the newest, whoever went last
    # Taking turns, only the first saw v1 as champion (the second saw the first's result); racing, both would.
    assert sum(line.startswith(f"{CHAMPION}: v1 →") for line in audits[2] + audits[3]) == 1, audits


def test_a_held_lock_makes_the_next_writer_wait_then_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_ENV, str(tmp_path / "locks"))
    with registry_lock("http://127.0.0.1:1", NAME):
        with pytest.raises(RegistryBusy, match=NAME):
            with registry_lock("http://127.0.0.1:1", NAME, wait_s=0.2):
                pass
    with registry_lock("http://127.0.0.1:1", NAME, wait_s=0.2):  # released with its holder
        pass


def test_the_lock_follows_the_store(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCK_ENV, raising=False)
    assert lock_target(f"sqlite:///{tmp_path}/mlflow.db") == str(tmp_path / "registry-locks")
    assert lock_target("postgresql+psycopg2://u@db/mlflow") == "postgresql+psycopg2://u@db/mlflow"
    monkeypatch.setenv(LOCK_ENV, "postgresql://u@db/mlflow")  # a tracking server: its database, named
    assert lock_target("http://mlflow:5000") == "postgresql://u@db/mlflow"
