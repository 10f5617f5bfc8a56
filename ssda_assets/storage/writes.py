"""Writes that never leave a half-written output: files via a temporary name
(`ssda_model.outputs.replace_folder`), tables in a transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ssda_model.outputs import replace_folder


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """ssda_model's atomic writer for the platform's data zone: every path there is the platform's
    own, including folders written before ssda marked its outputs."""
    return replace_folder(path, write, owned=True)


def _in_transaction(connection, frame: pd.DataFrame, statements: list[tuple[str, list]]) -> None:
    """Run `statements` with `frame` visible as the view `incoming`; all or nothing."""
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.register("incoming", frame)
        for sql, params in statements:
            connection.execute(sql, params)
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.unregister("incoming")


def replace_rows(connection, table: str, schema: str, frame: pd.DataFrame, key: dict[str, str]) -> None:
    """Replace the rows of `table` matching `key` (column → value) by `frame`, in one transaction.

    `table`, its `schema` (column DDL) and the key's columns are fixed in code; values are bound parameters.
    """
    where = " AND ".join(f"{column} = ?" for column in key)
    _in_transaction(
        connection,
        frame,
        [
            (f"CREATE TABLE IF NOT EXISTS {table} ({schema})", []),
            (f"DELETE FROM {table} WHERE {where}", list(key.values())),
            (f"INSERT INTO {table} BY NAME SELECT * FROM incoming", []),
        ],
    )


def replace_table(connection, table: str, frame: pd.DataFrame) -> None:
    """Swap in a whole new `table` in one transaction."""
    _in_transaction(connection, frame, [(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming", [])])
