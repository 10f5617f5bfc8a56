"""The MLflow run of a training: RUNNING while the model trains, with its per-epoch metrics live,
FAILED with the error when training fails, FINISHED once the version is registered.

A training whose process was killed leaves its run RUNNING and possibly a model version without
aliases; the next training of the task closes such runs and removes such versions, so the registry
never keeps a half-registered model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric

from ssda_assets.operations.run_health import worker_alive
from ssda_assets.registry.pyfunc import pyfunc_signature
from ssda_assets.registry.versions import MODEL_ARTIFACTS
from ssda_assets.storage.disk_space import SpaceNeeded
from ssda_model.model import SSDAModel
from ssda_model.train.protocol import flat_repetitions

BATCH = 1000  # MLflow's limit of metrics per log_batch call
PYFUNC_CODE = Path(__file__).resolve().parent / "pyfunc_code.py"  # models-from-code: no pickle
PACKAGES = PYFUNC_CODE.parents[2]
# Shipped inside every logged model, so it loads where ssda4drug is not installed (only the
# packages of PIP_REQUIREMENTS): the pyfunc imports ssda_assets.registry.pyfunc and ssda_model alone.
CODE_PATHS = [str(PACKAGES / "ssda_model"), str(PACKAGES / "ssda_assets")]
PIP_REQUIREMENTS = ["torch==2.13.0", "anndata", "pandas<3", "numpy", "scikit-learn", "mlflow"]


class LiveMetrics:
    """`on_epoch` callback: each repetition's losses and validation AUC, step = epoch, sent to the
    run every `every` seconds (and on `flush`), so the MLflow UI plots them while training runs."""

    def __init__(self, client: MlflowClient, run_id: str, every: float = 2.0) -> None:
        self.client, self.run_id, self.every = client, run_id, every
        self.pending: list[Metric] = []
        self.sent = time.monotonic()

    def __call__(self, repetition: int, record: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending += [
            Metric(f"rep{repetition}/{key}", float(value), now, int(record["epoch"]))
            for key, value in record.items()
            if key != "epoch" and value == value
        ]
        if time.monotonic() - self.sent >= self.every:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self.pending), BATCH):
            self.client.log_batch(self.run_id, metrics=self.pending[start : start + BATCH])
        self.pending, self.sent = [], time.monotonic()


def _training_alive(instance: dg.DagsterInstance, dagster_run_id: str | None) -> bool:
    run = instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
    return run is not None and not run.is_finished and worker_alive(instance, run.run_id) is not False


def close_abandoned_runs(
    client: MlflowClient, experiment_id: str, task: str, instance: dg.DagsterInstance
) -> list[str]:
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
        client.set_tag(
            run.info.run_id, "error", "the training process ended before the run did (killed or crashed)"
        )
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    return closed


class TrainingRun:
    """The active MLflow run of one training: `live` takes the per-epoch metrics, `log_model` the
    result (summary metrics, tables, the pyfunc holding the native folder) and returns its model URI."""

    def __init__(
        self, client: MlflowClient, run: mlflow.ActiveRun, experiment_id: str, closed: list[str]
    ) -> None:
        self.run_id, self.experiment_id, self.closed = run.info.run_id, experiment_id, closed
        self.live = LiveMetrics(client, self.run_id)

    def log_inputs(self, files: dict[str, Path], digest: str) -> None:
        """The harmonized tables the fit reads, as the run's dataset inputs (MLflow's Inputs), named
        and fingerprinted by the task's data hash, not read again."""
        for name, path in files.items():
            dataset = MetaDataset(resolve_dataset_source(str(path)), name=name, digest=digest[:16])
            mlflow.log_input(dataset, context="training")

    def log_model(self, model: SSDAModel, example: pd.DataFrame, wall_seconds: float) -> str:
        self.live.flush()
        metrics = model.metrics
        summary = {
            k: metrics[k]
            for k in ("mean_auc", "std_auc", "mean_aupr", "std_aupr", "mean_bulk_weight")
            if metrics[k] is not None
        } | {f"mean_auc_{m}": v for m, v in (metrics.get("mean_member_auc") or {}).items() if v is not None}
        mlflow.log_param("n_genes", metrics["n_genes"])
        mlflow.log_metrics({**summary, "wall_seconds": wall_seconds})
        mlflow.log_dict(metrics, "metrics.json")
        mlflow.log_table(pd.DataFrame(flat_repetitions(metrics["repetitions"])), "repetitions.json")
        with tempfile.TemporaryDirectory() as scratch:
            native = model.save(Path(scratch) / MODEL_ARTIFACTS)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_CODE),
                artifacts={MODEL_ARTIFACTS: str(native)},
                input_example=example,
                signature=pyfunc_signature(model, example),
                pip_requirements=PIP_REQUIREMENTS,
                code_paths=CODE_PATHS,
            )  # the weights live once, in the logged model (ssda_assets.registry.versions.native_files)
        return info.model_uri


@contextmanager
def training_run(
    client: MlflowClient,
    tracking_uri: str,
    experiment_id: str,
    run_name: str,
    tags: dict[str, str],
    params: dict,
    instance: dg.DagsterInstance,
    space: SpaceNeeded | None = None,
) -> Iterator[TrainingRun]:
    """An MLflow run around a whole training: abandoned runs of the task closed first, RUNNING
    while the body trains and registers, FAILED with the error in the tag `error` when it raises
    or is interrupted, FINISHED otherwise. A write that runs out of space (`space` names the
    folders) fails in one line naming the folder, the space needed and free."""
    with space.translated() if space else nullcontext():
        closed = close_abandoned_runs(client, experiment_id, tags["task"], instance)
        # MLflow's fluent API (start_run, log_model, register_model) keeps its store process-wide.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags=tags, log_system_metrics=True
        ) as run:  # CPU, memory and disk every 10 s beside the losses
            mlflow.log_params(params)
            try:
                yield TrainingRun(client, run, experiment_id, closed)
            except dg.DagsterExecutionInterruptedError as exc:  # a BaseException, as KeyboardInterrupt
                mlflow.set_tag("error", f"interrupted {exc}".strip())
                raise
            except Exception as exc:
                line = space.line_for(exc) if space else None
                with suppress(Exception):  # on a full disk this write may fail too: keep the first error
                    mlflow.set_tag("error", (line or getattr(exc, "description", None) or str(exc))[:5000])
                if line:
                    raise dg.Failure(description=line, allow_retries=False) from None
                raise
