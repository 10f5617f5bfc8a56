"""Training: one SSDA4Drug fit per (drug, dataset) task, tracked and registered in MLflow."""

import hashlib
import json
import tempfile
import time
from pathlib import Path

import anndata as ad
import dagster as dg
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from ssda_assets.defs.single_cell.assets import harmonized_dir, harmonized_expression
from ssda_assets.failures import input_errors
from ssda_assets.ingest import LABEL
from ssda_assets.partitions import task_partitions
from ssda_assets.pyfunc_model import score_frame
from ssda_assets.registry import apply_aliases, model_name
from ssda_assets.resources import MLflowTracking, PlatformPaths
from ssda_model.config import SSDAConfig
from ssda_model.model import SSDAModel

PYFUNC_CODE = Path(__file__).resolve().parents[2] / "pyfunc_code.py"  # models-from-code: no pickle
PIP_REQUIREMENTS = ["torch==2.13.0", "anndata", "pandas<3", "numpy", "scikit-learn", "mlflow"]


class TrainConfig(dg.Config):
    """Hyper-parameters of a training run (SPEC defaults); change them in the launchpad to relaunch."""

    method: str = "ssda"
    shots: str = "3"  # labeled target cells per class, or "all"
    repetitions: int = 5
    protocol: str = "strict"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    lambda_mme: float = 0.1
    epsilon: float = 1.0
    scaling: str = "per_domain"
    device: str = "auto"
    precision: str = "fp32"
    batch_repetitions: bool = True  # train the repetitions together as one batched ensemble

    def to_ssda(self) -> SSDAConfig:
        shots = self.shots if self.shots == "all" else int(self.shots)
        return SSDAConfig(method=self.method, shots=shots, repetitions=self.repetitions, protocol=self.protocol,
                          epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, lambda_mme=self.lambda_mme,
                          epsilon=self.epsilon, scaling=self.scaling, device=self.device,
                          precision=self.precision, batch_repetitions=self.batch_repetitions)


def read_harmonized(folder: Path) -> tuple[ad.AnnData, ad.AnnData, str]:
    """Source and target AnnData from harmonized_expression's files, and a hash of those files."""
    genes = (folder / "genes.txt").read_text().split()
    digest = hashlib.sha256()
    frames = {}
    for part in ("source", "target"):
        path = folder / f"{part}.parquet"
        digest.update(path.read_bytes())
        frames[part] = pd.read_parquet(path)
    source = frames["source"].set_index("sample_id")
    target = frames["target"].set_index("cell_id")
    as_anndata = lambda f: ad.AnnData(X=f[genes].to_numpy(np.float32),  # noqa: E731
                                      obs=pd.DataFrame({LABEL: f[LABEL].to_numpy()}, index=f.index.astype(str)),
                                      var=pd.DataFrame(index=genes))
    return as_anndata(source), as_anndata(target), digest.hexdigest()[:16]


def _log_history(client, run_id: str, histories: list[list[dict]]) -> None:
    """Per-epoch losses and validation AUC, one series per repetition (step = epoch), in batches."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"rep{r}/{key}", float(value), now, int(record["epoch"]))
               for r, history in enumerate(histories, start=1) for record in history
               for key, value in record.items() if key != "epoch" and value == value]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])


@dg.asset(group_name="training", kinds={"pytorch", "mlflow"}, partitions_def=task_partitions, pool="gpu",
          deps=[harmonized_expression], automation_condition=dg.AutomationCondition.eager())
def trained_model(context: dg.AssetExecutionContext, config: TrainConfig, paths: PlatformPaths,
                  mlflow_tracking: MLflowTracking) -> dg.MaterializeResult:
    """Fit SSDA4Drug on the task's harmonized data with `ssda_model` (GPU when present), log the run
    to MLflow, register a new model version and move the aliases by the champion rule."""
    keys = context.partition_key.keys_by_dimension
    drug, dataset = keys["drug"], keys["dataset"]
    folder = harmonized_dir(paths, drug, dataset)
    if not (folder / "genes.txt").exists():
        raise dg.Failure(description=f"no harmonized data for {drug}/{dataset} in {folder}: materialize "
                                     "harmonized_expression for this task first (does the dataset declare the drug?)",
                         allow_retries=False)
    mlflow_tracking.check_reachable()
    source, target, data_hash = read_harmonized(folder)
    with input_errors():
        try:
            ssda_config = config.to_ssda()
        except ValueError as exc:
            raise dg.Failure(description=f"trained_model config: {exc}", allow_retries=False) from None
        started = time.perf_counter()
        model = SSDAModel.fit(source, target, ssda_config, source_name=str(folder / "source.parquet"),
                              target_name=str(folder / "target.parquet"))
    wall = time.perf_counter() - started
    metrics = model.metrics
    basis = f"{metrics['protocol']}/{metrics['evaluation']}"

    client = mlflow_tracking.client()
    mlflow.set_tracking_uri(mlflow_tracking.tracking_uri)
    mlflow.set_registry_uri(mlflow_tracking.tracking_uri)
    experiment_id = mlflow_tracking.experiment_id(f"ssda-{drug}")
    name = model_name(drug, dataset)
    tags = {"task": f"{drug}/{dataset}", "drug": drug, "dataset": dataset, "dagster_run_id": context.run.run_id,
            "dagster_partition": str(context.partition_key), "data_hash": data_hash, "basis": basis}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name} {context.run.run_id[:8]}", tags=tags) as run:
        mlflow.log_params({**config.model_dump(), "n_genes": metrics["n_genes"]})
        _log_history(client, run.info.run_id, model.histories)
        summary = {k: metrics[k] for k in ("mean_auc", "std_auc", "mean_aupr", "std_aupr") if metrics[k] is not None}
        mlflow.log_metrics({**summary, "wall_seconds": wall})
        mlflow.log_dict(metrics, "metrics.json")
        mlflow.log_table(pd.DataFrame(metrics["repetitions"]), "repetitions.json")
        with tempfile.TemporaryDirectory() as scratch:
            native = model.save(Path(scratch) / "ssda_model")
            example = target.to_df().iloc[:5]
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(PYFUNC_CODE), artifacts={"ssda_model": str(native)},
                input_example=example, signature=infer_signature(example, score_frame(model, example)),
                pip_requirements=PIP_REQUIREMENTS)
            mlflow.log_artifacts(str(native), "ssda_model")
    score = metrics["mean_auc"] if metrics["mean_auc"] is not None else float("nan")
    version = mlflow.register_model(info.model_uri, name, tags={**tags, "auc": repr(score),  # exact: ties promote
                                                                 "protocol": metrics["protocol"],
                                                                 "evaluation": metrics["evaluation"],
                                                                 "mlflow_run_id": run.info.run_id})
    registration = apply_aliases(client, name, int(version.version), score, basis)
    fmt = lambda m, s: "n/a" if m is None else f"{m:.3f} ± {s:.3f}"  # noqa: E731
    # The data version is the champion: downstream analyses re-run when it changes, not on every training.
    return dg.MaterializeResult(data_version=dg.DataVersion(f"{name}@champion=v{registration.champion}"), metadata={
        "champion_version": registration.champion, "auc": fmt(metrics["mean_auc"], metrics["std_auc"]), "aupr": fmt(metrics["mean_aupr"], metrics["std_aupr"]),
        "mean_auc": score, "protocol": metrics["protocol"], "evaluation": metrics["evaluation"],
        "repetitions": len(metrics["repetitions"]), "shots": str(metrics["shots"]), "genes": metrics["n_genes"],
        "cells": metrics["n_target"], "device": metrics["device"], "wall_seconds": round(wall, 1),
        "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(experiment_id, run.info.run_id)),
        "registered_model": name, "model_version": registration.version,
        "aliases": ", ".join(registration.aliases), "data_hash": data_hash,
        "alias_audit": dg.MetadataValue.md("\n".join(f"- {line}" for line in registration.audit)),
        "repetition_table": dg.MetadataValue.md(pd.DataFrame(metrics["repetitions"]).to_markdown(index=False)),
    })
