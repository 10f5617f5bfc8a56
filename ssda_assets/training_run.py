"""The MLflow run of a training: RUNNING while the model trains, with its per-epoch metrics live,
FAILED with the error when training fails, FINISHED once the version is registered.

A training whose process was killed leaves its run RUNNING and possibly a model version without
aliases; the next training of the task closes such runs and removes such versions, so the registry
never keeps a half-registered model.
"""

from __future__ import annotations

import time

import dagster as dg
from mlflow import MlflowClient
from mlflow.entities import Metric

from ssda_assets.run_health import worker_alive

BATCH = 1000  # MLflow's limit of metrics per log_batch call


class LiveMetrics:
    """`on_epoch` callback: each repetition's losses and validation AUC, step = epoch, sent to the
    run every `every` seconds (and on `flush`), so the MLflow UI plots them while training runs."""

    def __init__(self, client: MlflowClient, run_id: str, every: float = 2.0) -> None:
        self.client, self.run_id, self.every = client, run_id, every
        self.pending: list[Metric] = []
        self.sent = time.monotonic()

    def __call__(self, repetition: int, record: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending += [Metric(f"rep{repetition}/{key}", float(value), now, int(record["epoch"]))
                         for key, value in record.items() if key != "epoch" and value == value]
        if time.monotonic() - self.sent >= self.every:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self.pending), BATCH):
            self.client.log_batch(self.run_id, metrics=self.pending[start:start + BATCH])
        self.pending, self.sent = [], time.monotonic()


def _training_alive(instance: dg.DagsterInstance, dagster_run_id: str | None) -> bool:
    run = instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
    return run is not None and not run.is_finished and worker_alive(instance, run.run_id) is not False


def close_abandoned_runs(client: MlflowClient, experiment_id: str, task: str, instance: dg.DagsterInstance) -> list[str]:
    """Mark FAILED the task's MLflow runs left RUNNING by a Dagster run that is over or whose
    process is gone, and delete the model versions they registered before any alias moved."""
    closed = []
    for run in client.search_runs([experiment_id], f"tags.task = '{task}' and attributes.status = 'RUNNING'"):
        if _training_alive(instance, run.data.tags.get("dagster_run_id")):
            continue
        for found in client.search_model_versions(f"run_id = '{run.info.run_id}'"):
            version = client.get_model_version(found.name, found.version)  # search results omit aliases
            if not version.aliases:
                client.delete_model_version(version.name, version.version)
        client.set_tag(run.info.run_id, "error", "the training process ended before the run did (killed or crashed)")
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    return closed
