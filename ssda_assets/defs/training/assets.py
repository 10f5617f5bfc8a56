"""Training: one SSDA4Drug fit per (drug, dataset) task, tracked and registered in MLflow."""

import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from ssda_assets.defs.single_cell.assets import harmonized_expression
from ssda_assets.defs.training.config import TrainConfig
from ssda_assets.operations.failures import input_errors
from ssda_assets.operations.interrupts import stop_signal_checks
from ssda_assets.raw.partitions import task_of, task_partitions
from ssda_assets.registry.retention import apply_retention
from ssda_assets.registry.training_run import TrainingRun
from ssda_assets.registry.versions import Registration, model_bytes, model_name, register_version
from ssda_assets.resources import MLflowTracking, PlatformPaths
from ssda_assets.storage.harmonized import read_harmonized
from ssda_assets.storage.table_metadata import OWNERS
from ssda_model.model import SSDAModel
from ssda_model.train.protocol import FitMetrics, flat_repetitions

# The assets' code version: bump it when a change here changes what an asset writes, so the UI marks
# materializations made by the old code as stale.
CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    kinds={"pytorch", "mlflow"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    pool="gpu",
    deps=[harmonized_expression],
    automation_condition=dg.AutomationCondition.eager(),
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    paths: PlatformPaths,
    mlflow_tracking: MLflowTracking,
) -> dg.MaterializeResult:
    """Fit SSDA4Drug on the task's harmonized data with `ssda_model` (GPU when present) inside an
    MLflow run, register a new model version and move the aliases by the champion rule."""
    drug, dataset = task_of(context.partition_key)
    folder = paths.harmonized(drug, dataset)
    try:
        ssda_config = config.to_ssda()
    except ValueError as exc:
        raise dg.Failure(description=f"trained_model config: {exc}", allow_retries=False) from None
    mlflow_tracking.check_reachable()
    name = model_name(drug, dataset)
    # Room for the logged model and the analyses' local copy of it, sized by the newest version's.
    space = paths.space_needed(
        f"training {drug}/{dataset}",
        (mlflow_tracking.local_artifacts, mlflow_tracking.local_store),
        2 * model_bytes(mlflow_tracking.client(), name),
    )
    space.check()
    source, target, data_hash = read_harmonized(folder, f"{drug}/{dataset}", config.max_target_cells)

    tags = {
        "task": f"{drug}/{dataset}",
        "drug": drug,
        "dataset": dataset,
        "dagster_run_id": context.run.run_id,
        "dagster_partition": str(context.partition_key),
        "data_hash": data_hash,
    }
    with mlflow_tracking.training_run(
        f"ssda-{drug}", f"{name} {context.run.run_id[:8]}", tags, config.model_dump(), context.instance, space
    ) as run:
        for run_id in run.closed:
            context.log.warning(f"MLflow run {run_id} of an earlier training that died was marked FAILED")

        run.log_inputs({"source": folder / "source.parquet", "target": folder / "target.parquet"}, data_hash)
        model, wall = _fit(source, target, ssda_config, folder, run)
        model_uri = run.log_model(model, target.to_df().iloc[:5], wall)
        registration = _register(mlflow_tracking.client(), model_uri, name, model.metrics, tags, run.run_id)
    champion_run = mlflow_tracking.client().get_model_version(name, str(registration.champion)).run_id
    retention = prune_versions(context, mlflow_tracking, name, paths.model_cache)
    # The data version is the champion's run (unique across stores, unlike version numbers):
    # downstream analyses re-run when the champion changes, not on every training.
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{name}@champion={champion_run}"),
        metadata={
            "champion_version": registration.champion,
            "champion_run_id": champion_run,
            **_metrics_metadata(model.metrics),
            "cells_in_dataset": pq.ParquetFile(folder / "target.parquet").metadata.num_rows,
            "training_sample": f"at most {config.max_target_cells} cells (max_target_cells; 0: every "
            "cell), stratified by label and time point, seed 0",
            "wall_seconds": round(wall, 1),
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run.experiment_id, run.run_id)),
            "mlflow_run_id": run.run_id,
            "registered_model": name,
            "model_version": registration.version,
            "aliases": ", ".join(registration.aliases),
            "data_hash": data_hash,
            "alias_audit": dg.MetadataValue.md("\n".join(f"- {line}" for line in registration.audit)),
            "retention": retention,
        },
    )


def _fit(source, target, ssda_config, folder: Path, run: TrainingRun) -> tuple[SSDAModel, float]:
    """The fit inside the MLflow run, each epoch's losses logged as they come and Ctrl-C or the UI's
    Terminate honoured at the next epoch; the model and its wall seconds."""
    with input_errors(), stop_signal_checks() as stop_requested:

        def on_epoch(repetition: int, record: dict[str, float]) -> None:
            run.live(repetition, record)
            stop_requested()  # Ctrl-C or the UI's Terminate, even if Dagster's raise was lost

        started = time.perf_counter()
        model = SSDAModel.fit(
            source,
            target,
            ssda_config,
            source_name=str(folder / "source.parquet"),
            target_name=str(folder / "target.parquet"),
            on_epoch=on_epoch,
            progress=sys.stderr.isatty(),
        )  # an epoch bar in a terminal (make demo)
        return model, time.perf_counter() - started


def _register(
    client, model_uri: str, name: str, metrics: FitMetrics, tags: dict, run_id: str
) -> Registration:
    """A new version of `name`, its aliases moved by the champion rule on its basis (protocol and
    evaluation set)."""
    basis = f"{metrics['protocol']}/{metrics['evaluation']}"
    score = metrics["mean_auc"] if metrics["mean_auc"] is not None else float("nan")
    version_tags = {
        **tags,
        "basis": basis,
        "protocol": metrics["protocol"],
        "evaluation": metrics["evaluation"],
        "mlflow_run_id": run_id,
    }
    return register_version(client, model_uri, name, score, basis, tags=version_tags)


def _metrics_metadata(metrics: FitMetrics) -> dict:
    """The fit's numbers as the materialization shows them."""
    fmt = lambda m, s: "n/a" if m is None else f"{m:.3f} ± {s:.3f}"  # noqa: E731
    chosen = [r["bulk_weight"] for r in metrics["repetitions"] if r["bulk_weight"] is not None]
    bulk = {"bulk_weight": f"{min(chosen):.3f}–{max(chosen):.3f} over repetitions"} if chosen else {}
    members = {  # the blend's: what each of its two networks scores alone
        f"auc_{m}": "n/a" if v is None else f"{v:.3f}"
        for m, v in (metrics.get("mean_member_auc") or {}).items()
    }
    return {
        **bulk,
        **members,
        "auc": fmt(metrics["mean_auc"], metrics["std_auc"]),
        "aupr": fmt(metrics["mean_aupr"], metrics["std_aupr"]),
        "mean_auc": metrics["mean_auc"] if metrics["mean_auc"] is not None else float("nan"),
        "protocol": metrics["protocol"],
        "evaluation": metrics["evaluation"],
        "repetitions": len(metrics["repetitions"]),
        "shots": str(metrics["shots"]),
        "genes": metrics["n_genes"],
        "cells": metrics["n_target"],
        "device": metrics["device"],
        "repetition_table": dg.MetadataValue.md(
            pd.DataFrame(flat_repetitions(metrics["repetitions"])).to_markdown(index=False)
        ),
    }


def prune_versions(
    context: dg.AssetExecutionContext, mlflow_tracking: MLflowTracking, name: str, cache
) -> str:
    """Apply the retention policy after a registration (`ssda_assets.registry.retention`); what it removed, in
    one line. A failure to clean up is a warning: the new version is registered either way."""
    try:
        pruned = apply_retention(
            mlflow_tracking.client(), name, mlflow_tracking.keep_versions, mlflow_tracking.retention, cache
        )
    except Exception as exc:  # noqa: BLE001 - cleaning up never fails a training that succeeded
        context.log.warning(f"retention of {name} failed ({type(exc).__name__}: {exc}); nothing else changed")
        return f"failed ({type(exc).__name__}: {exc})"
    if pruned.removed:
        context.log.info(f"retention of {name}: {pruned.summary}")
    return f"{mlflow_tracking.retention}, last {mlflow_tracking.keep_versions}: {pruned.summary}"
