"""What the Dagster catalog shows of every table the platform writes: `dagster/row_count` and
`dagster/column_schema` (Dagster's standard keys, so the UI's table view and search use them), and
the owner every asset names."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

OWNERS = ["team:ssda4drug"]  # who answers for the assets (the UI's owner filter)
ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"


def _kind(dtype: Any) -> str:
    """DuckDB-style type name of a pandas column."""
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    return "VARCHAR"


def schema_of_ddl(ddl: str, genes: int = 0) -> dg.TableSchema:
    """The columns of a `CREATE TABLE` column list ("drug VARCHAR, label TINYINT, ..."); `genes`
    more DOUBLE columns, one per gene, are one entry `<gene>` that says how many (not thousands)."""
    columns = [part.strip().split(maxsplit=1) for part in ddl.split(",") if part.strip()]
    schema = [dg.TableColumn(name, kind) for name, kind in columns]
    if genes:
        schema.append(dg.TableColumn("<gene>", "DOUBLE", description=f"{genes} columns, one per gene"))
    return dg.TableSchema(columns=schema)


def schema_of_frame(frame: pd.DataFrame) -> dg.TableSchema:
    """The columns of a table written from `frame`."""
    return dg.TableSchema(columns=[dg.TableColumn(str(c), _kind(frame[c].dtype)) for c in frame.columns])


def table_metadata(rows: int, schema: dg.TableSchema) -> dict[str, Any]:
    """The standard row count and column schema of a table (or of the rows a partition wrote)."""
    return {ROW_COUNT: int(rows), COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema)}
