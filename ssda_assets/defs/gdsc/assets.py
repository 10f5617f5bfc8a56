"""GDSC bulk data: expression matrix, dose-response table and per-drug binary labels."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from ssda_assets.operations.failures import input_errors
from ssda_assets.raw.drugs import match_gdsc_names
from ssda_assets.raw.fingerprint import INPUT_HASH, gdsc_hash
from ssda_assets.raw.partitions import drug_partitions
from ssda_assets.resources import PlatformPaths
from ssda_assets.storage.table_metadata import OWNERS, schema_of_ddl, schema_of_frame, table_metadata
from ssda_assets.storage.writes import replace_rows, replace_table, write_atomically
from ssda_model.data.gdsc import binarise_ic50, read_gdsc_expression, read_gdsc_response
from ssda_model.errors import SSDAInputError

# The assets' code version: bump it when a change here changes what an asset writes, so the UI marks
# materializations made by the old code as stale.
CODE_VERSION = "1"
MIN_LINES_PER_CLASS = 10
LABELS_SCHEMA = (
    "drug VARCHAR, gdsc_drug_name VARCHAR, cosmic_id BIGINT, ln_ic50 DOUBLE, threshold DOUBLE, label TINYINT"
)


def _one_file(raw: Path, patterns: tuple[str, ...], what: str) -> list[Path]:
    found = sorted({p for pattern in patterns for p in raw.glob(pattern)})
    if not found:
        raise SSDAInputError(str(raw), f"no {what} found (looked for {', '.join(patterns)})")
    return found


@dg.asset(
    group_name="gdsc",
    kinds={"parquet"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    check_specs=[dg.AssetCheckSpec("finite_expression", asset="gdsc_expression", blocking=True)],
)
def gdsc_expression(paths: PlatformPaths) -> dg.MaterializeResult:
    """GDSC RMA basal expression (log2): cell lines (COSMIC ID) × gene symbols, duplicates averaged."""
    read = gdsc_hash(paths.raw)
    with input_errors():
        source = _one_file(
            paths.raw,
            ("Cell_line_RMA_proc_basalExp*.txt", "Cell_line_RMA_proc_basalExp*.zip"),
            "GDSC expression file",
        )[0]
        matrix, report = read_gdsc_expression(source)
    frame = matrix.reset_index()
    frame.columns = [str(c) for c in frame.columns]
    write_atomically(paths.gdsc_expression, lambda tmp: frame.to_parquet(tmp, index=False))
    finite = bool(np.isfinite(matrix.to_numpy()).all())
    return dg.MaterializeResult(
        metadata={
            "source_file": str(source),
            "path": str(paths.gdsc_expression),
            INPUT_HASH: read,
            "cell_lines": report["cell_lines"],
            "genes": report["genes"],
            "genes_dropped_empty_symbol": report["genes_dropped_empty_symbol"],
            "rows_with_duplicated_symbol": report["rows_with_duplicated_symbol"],
            **table_metadata(len(frame), schema_of_ddl("cosmic_id BIGINT", genes=frame.shape[1] - 1)),
        },
        check_results=[dg.AssetCheckResult(check_name="finite_expression", passed=finite)],
    )


@dg.asset(group_name="gdsc", kinds={"duckdb"}, code_version=CODE_VERSION, owners=OWNERS)
def gdsc_response(paths: PlatformPaths, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Every GDSC1/GDSC2 fitted dose-response file of the raw zone, in long form."""
    read = gdsc_hash(paths.raw)
    with input_errors():
        files = _one_file(
            paths.raw,
            ("*fitted_dose_response*.csv", "*fitted_dose_response*.xlsx"),
            "GDSC fitted dose-response file",
        )
        frame = pd.concat([read_gdsc_response(f) for f in files], ignore_index=True)
    with warehouse.get_connection() as connection:
        replace_table(connection, "gdsc_response", frame)
    return dg.MaterializeResult(
        metadata={
            INPUT_HASH: read,
            "files": ", ".join(f.name for f in files),
            **table_metadata(len(frame), schema_of_frame(frame)),
            "drugs": int(frame["drug"].nunique()),
            "cell_lines": int(frame["cosmic_id"].nunique()),
            "preview": dg.MetadataValue.md(frame.head(5).to_markdown(index=False)),
        }
    )


@dg.asset(
    group_name="gdsc",
    kinds={"duckdb"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=drug_partitions,
    deps=[gdsc_response, gdsc_expression],
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec(
            "both_classes",
            asset="gdsc_labels",
            blocking=True,
            description=f"at least {MIN_LINES_PER_CLASS} lines per class",
        )
    ],
)
def gdsc_labels(
    context: dg.AssetExecutionContext, paths: PlatformPaths, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Binary labels of one drug: 1 (sensitive) when LN_IC50 is below the drug's mean over the lines
    that have expression. A line screened more than once (GDSC1 and GDSC2) gets its mean LN_IC50."""
    key = context.partition_key
    with_expression = set(pd.read_parquet(paths.gdsc_expression, columns=["cosmic_id"])["cosmic_id"])
    with warehouse.get_connection() as connection, input_errors():
        names = [r[0] for r in connection.execute("SELECT DISTINCT drug FROM gdsc_response").fetchall()]
        matches = match_gdsc_names(key, names, "gdsc_response")
        rows = connection.execute(
            "SELECT cosmic_id, ln_ic50 FROM gdsc_response WHERE list_contains(?, drug)", [matches]
        ).df()
    ic50 = rows.groupby("cosmic_id")["ln_ic50"].mean()
    ic50 = ic50[ic50.index.isin(with_expression)]
    if ic50.empty:
        raise dg.Failure(
            description=f"gdsc_response: no cell line screened with {key!r} has expression data",
            allow_retries=False,
        )
    labels, threshold = binarise_ic50(ic50)
    frame = pd.DataFrame(
        {
            "drug": key,
            "gdsc_drug_name": ", ".join(matches),
            "cosmic_id": ic50.index.astype(np.int64),
            "ln_ic50": ic50.to_numpy(),
            "threshold": threshold,
            "label": labels.to_numpy(),
        }
    )
    with warehouse.get_connection() as connection:
        replace_rows(connection, "gdsc_labels", LABELS_SCHEMA, frame, {"drug": key})
    counts = {"sensitive": int(labels.sum()), "resistant": int((labels == 0).sum())}
    return dg.MaterializeResult(
        metadata={
            "gdsc_drug_name": ", ".join(matches),
            "threshold_ln_ic50": threshold,
            **counts,
            **table_metadata(len(frame), schema_of_ddl(LABELS_SCHEMA)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="both_classes", passed=min(counts.values()) >= MIN_LINES_PER_CLASS, metadata=counts
            )
        ],
    )
