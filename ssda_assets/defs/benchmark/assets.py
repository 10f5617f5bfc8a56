"""The method comparison of the paper (Fig. 2, 3) for one task, on demand: it is expensive, so it is
not on the automation path. Results in DuckDB, one MLflow run per method, plots in the UI."""

import base64
import tempfile
from pathlib import Path

import dagster as dg
import mlflow
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ssda_assets.defs.single_cell.assets import harmonized_expression
from ssda_assets.operations.failures import input_errors
from ssda_assets.operations.interrupts import stop_signal_checks
from ssda_assets.raw.partitions import task_of, task_partitions
from ssda_assets.resources import MLflowTracking, PlatformPaths
from ssda_assets.storage.harmonized import read_harmonized
from ssda_assets.storage.table_metadata import OWNERS, schema_of_ddl, table_metadata
from ssda_assets.storage.writes import replace_rows
from ssda_model.benchmark import ALL_METHODS, run_benchmark, summarize
from ssda_model.benchmark_plots import boxplots, fewshot_curves
from ssda_model.config import Protocol, SSDAConfig

# The assets' code version: bump it when a change here changes what an asset writes, so the UI marks
# materializations made by the old code as stale.
CODE_VERSION = "1"
RESULTS_SCHEMA = (
    "drug VARCHAR, dataset VARCHAR, method VARCHAR, shots INTEGER, repetition INTEGER, seed INTEGER, "
    "auc DOUBLE, aupr DOUBLE, protocol VARCHAR, n_eval INTEGER"
)


class BenchmarkConfig(dg.Config):
    methods: list[str] = Field(
        default=list(ALL_METHODS), description=f"Methods to compare, from {', '.join(ALL_METHODS)}."
    )
    shots: list[int] = Field(
        default=[1, 2, 3, 5, 10], description="Labeled target cells per class; one comparison per count."
    )
    repetitions: int = Field(default=50, description="Repetitions (seeds) per method and shot count.")
    protocol: Protocol = Field(
        default="paper",
        description="paper: labeled target cells choose the epoch, as published; strict: source validation.",
    )
    epochs: int = Field(default=50, description="Training epochs per repetition.")
    device: str = Field(default="auto", description='"auto" (a GPU when present), "cpu", "cuda" or "cuda:N".')


def _png_markdown(path: Path, title: str) -> str:
    return (
        f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})\n"
    )


@dg.asset(
    group_name="benchmark",
    kinds={"duckdb", "mlflow"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    pool="gpu",
    deps=[harmonized_expression],
)
def benchmark(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    paths: PlatformPaths,
    warehouse: DuckDBResource,
    mlflow_tracking: MLflowTracking,
) -> dg.MaterializeResult:
    """Every method on the same splits and shots per repetition; paired Wilcoxon tests against ssda."""
    drug, dataset = task_of(context.partition_key)
    mlflow_tracking.check_reachable()
    source, target, data_hash = read_harmonized(paths.harmonized(drug, dataset), f"{drug}/{dataset}")
    with input_errors(), stop_signal_checks() as stop_requested:
        try:
            ssda_config = SSDAConfig(protocol=config.protocol, epochs=config.epochs, device=config.device)
            results = run_benchmark(
                source,
                target,
                methods=config.methods,
                shots=config.shots,
                repetitions=config.repetitions,
                config=ssda_config,
                on_result=lambda row: stop_requested(),  # Ctrl-C or Terminate: stop between methods
            )
        except ValueError as exc:
            raise dg.Failure(description=f"benchmark config: {exc}", allow_retries=False) from None
    summary = summarize(results)
    with warehouse.get_connection() as connection:
        replace_rows(
            connection,
            "benchmark_results",
            RESULTS_SCHEMA,
            results.assign(drug=drug, dataset=dataset),
            {"drug": drug, "dataset": dataset},
        )
    mlflow.set_tracking_uri(mlflow_tracking.tracking_uri)
    experiment_id = mlflow_tracking.experiment_id(f"ssda-{drug}-benchmark")
    run_ids = []
    for method, rows in results.groupby("method", sort=False):
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{method} {dataset}",
            tags={
                "task": f"{drug}/{dataset}",
                "method": method,
                "data_hash": data_hash,
                "dagster_run_id": context.run.run_id,
            },
        ):
            mlflow.log_params(
                {
                    "method": method,
                    "protocol": config.protocol,
                    "epochs": config.epochs,
                    "repetitions": config.repetitions,
                    "shots": ",".join(map(str, config.shots)),
                }
            )
            for shots, group in rows.groupby("shots"):
                mlflow.log_metrics(
                    {"mean_auc": group["auc"].mean(), "mean_aupr": group["aupr"].mean()}, step=int(shots)
                )
            mlflow.log_table(rows, "results.json")
            run_ids.append(mlflow.active_run().info.run_id)
    with tempfile.TemporaryDirectory() as scratch:
        figures = "".join(
            _png_markdown(draw(results, *args, Path(scratch) / name), title)
            for draw, args, name, title in (
                (boxplots, ("auc",), "auc.png", "AUC per method"),
                (boxplots, ("aupr",), "aupr.png", "AUPR per method"),
                (fewshot_curves, (), "fewshot.png", "Few-shot curves"),
            )
        )
        client = mlflow_tracking.client()
        for run_id in run_ids:  # every method's run shows the comparison it took part in
            client.log_artifacts(run_id, scratch, "figures")
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(summary.round(4).to_markdown(index=False)),
            **table_metadata(len(results), schema_of_ddl(RESULTS_SCHEMA)),
            "mlflow_experiment": dg.MetadataValue.url(mlflow_tracking.experiment_url(experiment_id)),
            "plots": dg.MetadataValue.md(figures),
        }
    )
