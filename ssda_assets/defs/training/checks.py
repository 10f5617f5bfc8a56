"""Is the task's champion better than its shots alone? The shots-alone baseline is SSDA4Drug's own
`target_only` method (the network trained on the labeled target cells only, no bulk, no unlabeled
cells) fitted with the champion's hyper-parameters on the same repetitions, hence the same shots
and evaluation cells; the champion should beat it, or the bulk data is not helping (WARN)."""

import math

import dagster as dg

from ssda_assets.defs.training.assets import trained_model
from ssda_assets.defs.training.config import TrainConfig
from ssda_assets.operations.failures import input_errors
from ssda_assets.raw.partitions import task_of
from ssda_assets.resources import MLflowTracking, PlatformPaths
from ssda_assets.storage.harmonized import read_harmonized
from ssda_assets.storage.table_checks import WARN, partitioned_check
from ssda_model.model import SSDAModel


def _champion(context: dg.AssetCheckExecutionContext, mlflow_tracking: MLflowTracking):
    """The champion's registered version (its tags hold its AUC and basis) and its run config."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=trained_model.key, asset_partitions=[str(context.partition_key)]),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    client = mlflow_tracking.client()
    version = client.get_model_version(
        metadata["registered_model"].value, str(metadata["champion_version"].value)
    )
    params = client.get_run(version.run_id).data.params
    config = TrainConfig(**{name: params[name] for name in TrainConfig.model_fields if name in params})
    return version, config


@partitioned_check(
    trained_model,
    "beats_shots_alone",
    "the champion's AUC is above the shots-alone baseline's (target_only, same shots and evaluation cells)",
)
def beats_shots_alone(
    context: dg.AssetCheckExecutionContext, paths: PlatformPaths, mlflow_tracking: MLflowTracking
) -> dg.AssetCheckResult:
    drug, dataset = task_of(context.partition_key)
    version, config = _champion(context, mlflow_tracking)
    champion_auc = float(version.tags.get("auc", "nan"))
    ssda_config = config.to_ssda()
    if ssda_config.shots == "all":
        return dg.AssetCheckResult(
            passed=True,
            severity=WARN,
            description="shots = all: no target cell is left to compare on",
            metadata={"champion_version": int(version.version)},
        )
    source, target, data_hash = read_harmonized(
        paths.harmonized(drug, dataset), f"{drug}/{dataset}", config.max_target_cells
    )
    with input_errors():
        baseline = SSDAModel.fit(source, target, ssda_config.replace(method="target_only")).metrics
    baseline_auc = baseline["mean_auc"] if baseline["mean_auc"] is not None else float("nan")
    passed = not math.isnan(champion_auc) and (math.isnan(baseline_auc) or champion_auc > baseline_auc)
    return dg.AssetCheckResult(
        passed=passed,
        severity=WARN,
        metadata={
            "champion_version": int(version.version),
            "champion_method": ssda_config.method,
            "champion_auc": champion_auc,
            "shots_alone_auc": baseline_auc,
            "margin": champion_auc - baseline_auc,
            "basis": version.tags.get("basis", ""),
            "same_data": data_hash == version.tags.get("data_hash"),
        },
    )
