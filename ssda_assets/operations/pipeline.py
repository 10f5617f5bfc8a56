"""Materialize the whole asset graph, every partition, into the Dagster instance: what `make demo` runs.

    python -m ssda_assets.operations.pipeline [--demo] [--epochs N] [--repetitions R]

(with DAGSTER_HOME set, e.g. DAGSTER_HOME=$PWD/dagster_home; `make demo` sets it).

With --demo the embedded demo raw zone is generated first when the raw folder has no GDSC files.
Training uses the platform's defaults (the reference code's 50 epochs and 5 repetitions) unless
--epochs/--repetitions say otherwise, so the demo's models are the ones production would train.
One line per stage and per partition reports progress and elapsed time.
Runs are recorded in the instance, so the Dagster UI shows them; each run of this command adds a
new model version per task in MLflow.
"""

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

import dagster as dg
import pandas as pd

from ssda_assets.operations.interrupts import PipelineInterrupted, StopSignals
from ssda_assets.operations.run_health import fail_dead_runs
from ssda_assets.raw.catalog import register_partitions
from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_assets.raw.partitions import task_of
from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env
from ssda_model.logs import log_to_stderr

logger = logging.getLogger(__name__)

STAGES = [  # (what a user reads, assets, partition kind) in dependency order
    ("GDSC expression and dose-response", ["gdsc_expression", "gdsc_response"], None),
    ("GDSC labels", ["gdsc_labels"], "drug"),
    ("single-cell ingestion and QC", ["sc_dataset"], "dataset"),
    ("harmonisation and training", ["harmonized_expression", "target_dataset", "trained_model"], "task"),
    (
        "analyses of the champion",
        ["cell_predictions", "temporal_drift", "resistance_markers", "attribution_report", "latent_map"],
        "task",
    ),
]


def _label(key) -> str:
    if isinstance(key, dg.MultiPartitionKey):
        return "/".join(task_of(key))
    return key or "all"


def run_pipeline(
    instance: dg.DagsterInstance,
    train_config: dict | None = None,
    say: Callable[[str], None] = lambda line: None,
    after_run: Callable[[str], None] = lambda done: None,
) -> tuple[pd.DataFrame, list[str]]:
    """Materialize every stage for every partition; returns the training summary and the failures.
    `say` receives one progress line per stage and per partition as it goes; `after_run` is called
    with what each run did (stage, partition) once it has ended, and may raise to stop."""
    from ssda_assets.definitions import defs

    started = time.perf_counter()
    definitions = defs()
    for run_id in fail_dead_runs(instance):
        logger.warning(f"run {run_id} had died (its process is gone): marked failed and its pool slot freed")
    paths = paths_from_env()
    resources = {"paths": paths, "warehouse": warehouse_from_env(), "mlflow_tracking": mlflow_from_env()}
    catalog = register_partitions(instance, paths.raw)
    for name, reason in catalog.invalid.items():
        logger.warning(f"skipped dataset {name}: {reason}")
    keys = {
        None: [None],
        "task": catalog.tasks(paths.raw),
        "drug": instance.get_dynamic_partitions("drug"),
        "dataset": sorted(catalog.manifests),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    train_run_config = (
        {**quiet, "ops": {"trained_model": {"config": train_config}}} if train_config else quiet
    )
    failures, rows = [], []
    for number, (title, names, kind) in enumerate(STAGES, start=1):
        say(
            f"[{time.perf_counter() - started:6.1f} s] stage {number}/{len(STAGES)}: {title} "
            f"({len(keys[kind])} {kind or 'run'}{'s' if len(keys[kind]) != 1 else ''}: {', '.join(names)})"
        )
        for key in keys[kind]:
            step = time.perf_counter()
            result = dg.materialize(
                [definitions.get_assets_def(n) for n in names],
                instance=instance,
                partition_key=key,
                resources=resources,
                raise_on_error=False,
                run_config=train_run_config if "trained_model" in names else quiet,
            )
            for event in result.get_step_failure_events():
                failures.append(
                    f"{event.step_key} {key or ''}: {event.event_specific_data.error.message.strip()}"
                )
            done = len(result.get_asset_materialization_events())
            outcome = "failed" if result.get_step_failure_events() else f"{done} materialized"
            say(
                f"[{time.perf_counter() - started:6.1f} s]   {_label(key)}: {outcome} "
                f"in {time.perf_counter() - step:.1f} s"
            )
            after_run(f"{title}, {_label(key)}")
            for event in result.get_asset_materialization_events():
                if event.asset_key == dg.AssetKey("trained_model"):
                    meta = {k: v.value for k, v in event.materialization.metadata.items()}
                    rows.append(
                        {
                            "task": _label(key),
                            "cells": meta["cells"],
                            "mean AUC": meta["auc"],
                            "protocol": meta["protocol"],
                            "model": meta["registered_model"],
                            "version": meta["model_version"],
                            "aliases": meta["aliases"],
                        }
                    )
    return pd.DataFrame(rows), failures


def demo_space():
    """What `make demo` needs free before it starts: SSDA_MIN_FREE_MB in DAGSTER_HOME, the data zone
    and the local MLflow stores (`ssda_assets.storage.disk_space`)."""
    tracking = mlflow_from_env()
    return paths_from_env().space_needed("make demo", (tracking.local_artifacts, tracking.local_store))


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssda_assets.operations.pipeline", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="generate the demo raw zone first when it is empty",
    )
    parser.add_argument("--epochs", type=int, help="training epochs per repetition (default: the platform's)")
    parser.add_argument(
        "--repetitions", type=int, help="training repetitions per task (default: the platform's)"
    )
    args = parser.parse_args()
    log_to_stderr("ssda_assets", "ssda_model")  # the library's warnings, as plain lines on stderr
    # Read when mlflow loads, later: its INFO lines say nothing a demo user needs.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    raw = paths_from_env().raw
    space = demo_space()
    try:
        space.check()
    except dg.Failure as failure:
        print(failure.description, file=sys.stderr)
        return 1
    if args.demo and not any(raw.glob("*fitted_dose_response*")):
        print(f"writing the demo raw data to {raw}", flush=True)
        write_demo_raw(raw)
    train_config = {k: v for k, v in (("epochs", args.epochs), ("repetitions", args.repetitions)) if v}
    try:
        with dg.DagsterInstance.get() as instance, StopSignals() as stop:
            summary, failures = run_pipeline(
                instance, train_config or None, say=lambda line: print(line, flush=True), after_run=stop.check
            )
    except (KeyboardInterrupt, PipelineInterrupted) as interrupt:
        received = interrupt.received if isinstance(interrupt, PipelineInterrupted) else signal.SIGINT
        where = f" during {interrupt.after}" if isinstance(interrupt, PipelineInterrupted) else ""
        print(
            f"stopped by {received.name}{where} after {time.perf_counter() - started:.0f} s: every run "
            "that finished before it is kept; run the command again to do the rest",
            file=sys.stderr,
        )
        return 128 + received
    except Exception as exc:
        line = space.line_for(exc)  # Dagster's own run storage out of space, say
        if line is None:
            raise
        print(f"{line}; every run that finished before it is kept", file=sys.stderr)
        return 1
    print(summary.to_markdown(index=False) if len(summary) else "no model was trained")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
