"""Checks of the analysis tables: every cell that passed QC is scored once, with a probability; the
tables have rows and unique keys (ssda_assets/storage/table_checks.py)."""

import dagster as dg
import numpy as np
from dagster_duckdb import DuckDBResource

from ssda_assets.defs.analysis.assets import cell_predictions, resistance_markers, temporal_drift
from ssda_assets.raw.partitions import task_of
from ssda_assets.resources import PlatformPaths
from ssda_assets.storage.table_checks import ERROR, WARN, partitioned_check, table_checks
from ssda_model.data.readers import close_h5ad, open_h5ad

TASK_FILTER = "SELECT {} FROM cell_predictions WHERE drug = ? AND dataset = ?"


@partitioned_check(
    cell_predictions,
    "every_qc_cell_scored",
    "every cell of sc_dataset (the cells that passed QC) has a score",
)
def every_qc_cell_scored(
    context: dg.AssetCheckExecutionContext, paths: PlatformPaths, warehouse: DuckDBResource
) -> dg.AssetCheckResult:
    drug, dataset = task_of(context.partition_key)
    cells = open_h5ad(paths.sc_dataset(dataset))
    qc_cells = np.asarray(cells.obs_names.astype(str))
    close_h5ad(cells)
    with warehouse.get_connection() as connection:
        scored = connection.execute(TASK_FILTER.format("cell_id"), [drug, dataset]).df()["cell_id"]
    missing = np.setdiff1d(qc_cells, scored.to_numpy(str))
    return dg.AssetCheckResult(
        passed=len(missing) == 0,
        severity=ERROR,
        metadata={
            "qc_cells": len(qc_cells),
            "scored": len(scored),
            "unscored": len(missing),
            "first_unscored": ", ".join(missing[:5]),
        },
    )


@partitioned_check(cell_predictions, "scores_are_probabilities", "every score is a number in [0, 1]")
def scores_are_probabilities(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
) -> dg.AssetCheckResult:
    drug, dataset = task_of(context.partition_key)
    outside = "count_if(score IS NULL OR isnan(score) OR score < 0 OR score > 1), min(score), max(score)"
    with warehouse.get_connection() as connection:
        bad, low, high = connection.execute(TASK_FILTER.format(outside), [drug, dataset]).fetchone()
    return dg.AssetCheckResult(
        passed=bad == 0,
        severity=ERROR,
        metadata={"outside_0_1": int(bad), "min_score": float(low or 0), "max_score": float(high or 0)},
    )


predictions_table = table_checks(cell_predictions, "cell_predictions", ("drug", "dataset", "cell_id"))
drift_table = table_checks(temporal_drift, "temporal_drift", ("drug", "dataset", "kind", "name"))
# a contrast may find no gene past the thresholds: a quality signal, not a broken table
markers_table = table_checks(
    resistance_markers, "resistance_markers", ("drug", "dataset", "gene"), empty=WARN
)
