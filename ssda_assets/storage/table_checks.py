"""Asset checks every DuckDB table of the warehouse gets: it has rows (for the partition just
written) and no two rows share its key. A duplicate key is a broken invariant (ERROR: the writer
replaces a partition's rows in one transaction); an empty table is an ERROR unless the asset may
legitimately write none (then WARN)."""

import warnings
from collections.abc import Callable

import dagster as dg
from dagster_duckdb import DuckDBResource

from ssda_assets.raw.partitions import task_of

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def partition_filter(partition_key: str | dg.MultiPartitionKey | None, dimension: str | None) -> dict:
    """Column → value of the rows one partition wrote: {} for an unpartitioned table, {drug: …}
    for a drug partition, {drug: …, dataset: …} for a task."""
    if partition_key is None:
        return {}
    if isinstance(partition_key, dg.MultiPartitionKey):
        drug, dataset = task_of(partition_key)
        return {"drug": drug, "dataset": dataset}
    return {dimension or "drug": partition_key}


def partitioned_check(
    asset: dg.AssetsDefinition, name: str, description: str
) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """`@dg.asset_check` on `asset`, per partition as the asset (Dagster marks partitioned checks
    a preview and says so at every definition; the API is the documented one)."""

    def decorate(function: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=dg.PreviewWarning)
            return dg.asset_check(
                asset=asset, name=name, description=description, partitions_def=asset.partitions_def
            )(function)

    return decorate


def _where(where: dict) -> tuple[str, list]:
    if not where:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column in where), list(where.values())


def table_checks(
    asset: dg.AssetsDefinition,
    table: str,
    key: tuple[str, ...],
    *,
    dimension: str | None = None,
    empty: dg.AssetCheckSeverity = ERROR,
    duplicates: dg.AssetCheckSeverity = ERROR,
) -> list[dg.AssetChecksDefinition]:
    """`not_empty` and `unique_keys` of `table` (written by `asset`); `key` the columns that name a
    row; `dimension` the column of a single-dimension partition key."""

    def scope(context: dg.AssetCheckExecutionContext) -> dict:
        return partition_filter(context.partition_key if context.has_partition_key else None, dimension)

    @partitioned_check(asset, "not_empty", f"{table} has rows (for the partition written)")
    def not_empty(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource) -> dg.AssetCheckResult:
        where, params = _where(scope(context))
        with warehouse.get_connection() as connection:
            rows = connection.execute(f"SELECT count(*) FROM {table}{where}", params).fetchone()[0]
        return dg.AssetCheckResult(passed=rows > 0, severity=empty, metadata={"rows": int(rows)})

    @partitioned_check(asset, "unique_keys", f"no two rows of {table} share ({', '.join(key)})")
    def unique_keys(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource) -> dg.AssetCheckResult:
        where, params = _where(scope(context))
        columns = ", ".join(key)
        with warehouse.get_connection() as connection:
            duplicated = connection.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM {table}{where} GROUP BY {columns} "
                "HAVING count(*) > 1)",
                params,
            ).fetchone()[0]
        return dg.AssetCheckResult(
            passed=duplicated == 0,
            severity=duplicates,
            metadata={"duplicated_keys": int(duplicated), "key": columns},
        )

    return [not_empty, unique_keys]
