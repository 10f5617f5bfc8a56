"""Materialize the whole asset graph, every partition, into the Dagster instance: what `make demo` runs.

    DAGSTER_HOME=$PWD/dagster_home python -m ssda_assets.pipeline [--demo] [--epochs N] [--repetitions R]

With --demo the embedded demo raw zone is generated first when the raw folder has no GDSC files.
Runs are recorded in the instance, so the Dagster UI shows them; each run of this command adds a
new model version per task in MLflow.
"""

import argparse
import sys
import warnings

import dagster as dg
import pandas as pd

from ssda_assets.catalog import register_partitions
from ssda_assets.demo_raw import write_demo_raw
from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env
from ssda_assets.run_health import fail_dead_runs

STAGES = [  # (assets, partition kind) in dependency order
    (["gdsc_expression", "gdsc_response"], None),
    (["gdsc_labels"], "drug"),
    (["sc_dataset"], "dataset"),
    (["harmonized_expression", "target_dataset", "trained_model"], "task"),
    (["cell_predictions", "temporal_drift", "resistance_markers", "attribution_report", "latent_map"], "task"),
]


def run_pipeline(instance: dg.DagsterInstance, train_config: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Materialize every stage for every partition; returns the training summary and the failures."""
    from ssda_assets.definitions import defs

    definitions = defs()
    for run_id in fail_dead_runs(instance):
        print(f"run {run_id} had died (its process is gone): marked failed and its pool slot freed", file=sys.stderr)
    paths = paths_from_env()
    resources = {"paths": paths, "warehouse": warehouse_from_env(), "mlflow_tracking": mlflow_from_env()}
    catalog = register_partitions(instance, paths.raw)
    for name, reason in catalog.invalid.items():
        print(f"skipped dataset {name}: {reason}", file=sys.stderr)
    keys = {None: [None], "task": catalog.tasks(paths.raw),
            "drug": instance.get_dynamic_partitions("drug"), "dataset": sorted(catalog.manifests)}
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    train_run_config = {**quiet, "ops": {"trained_model": {"config": train_config}}} if train_config else quiet
    failures, rows = [], []
    for names, kind in STAGES:
        for key in keys[kind]:
            result = dg.materialize([definitions.get_assets_def(n) for n in names], instance=instance,
                                    partition_key=key, resources=resources, raise_on_error=False,
                                    run_config=train_run_config if "trained_model" in names else quiet)
            for event in result.get_step_failure_events():
                failures.append(f"{event.step_key} {key or ''}: {event.event_specific_data.error.message.strip()}")
            for event in result.get_asset_materialization_events():
                if event.asset_key == dg.AssetKey("trained_model"):
                    meta = {k: v.value for k, v in event.materialization.metadata.items()}
                    rows.append({"task": f"{key.keys_by_dimension['drug']}/{key.keys_by_dimension['dataset']}",
                                 "cells": meta["cells"], "mean AUC": meta["auc"], "protocol": meta["protocol"],
                                 "model": meta["registered_model"], "version": meta["model_version"],
                                 "aliases": meta["aliases"]})
    return pd.DataFrame(rows), failures


def main() -> int:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    parser = argparse.ArgumentParser(prog="python -m ssda_assets.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="generate the demo raw zone when it is empty")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--repetitions", type=int)
    args = parser.parse_args()
    raw = paths_from_env().raw
    if args.demo and not any(raw.glob("*fitted_dose_response*")):
        print(f"writing the demo raw data to {raw}")
        write_demo_raw(raw)
    train_config = {k: v for k, v in (("epochs", args.epochs), ("repetitions", args.repetitions)) if v}
    with dg.DagsterInstance.get() as instance:
        summary, failures = run_pipeline(instance, train_config or None)
    print(summary.to_markdown(index=False) if len(summary) else "no model was trained")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
