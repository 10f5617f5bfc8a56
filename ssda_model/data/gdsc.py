"""Readers of the official GDSC downloads and the paper's IC50 binarisation.

Expression: `Cell_line_RMA_proc_basalExp.txt` (log2 RMA; GENE_SYMBOLS, GENE_title, DATA.<COSMIC>).
Response: `GDSC{1,2}_fitted_dose_response_*.csv|xlsx` (natural-log IC50 in LN_IC50).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ssda_model.errors import SSDAInputError

RESPONSE_COLUMNS = {
    "DATASET": "dataset",
    "COSMIC_ID": "cosmic_id",
    "CELL_LINE_NAME": "cell_line",
    "TCGA_DESC": "tissue",
    "DRUG_ID": "drug_id",
    "DRUG_NAME": "drug",
    "LN_IC50": "ln_ic50",
    "AUC": "auc",
}


def normalise_drug_name(name: str) -> str:
    """Case- and punctuation-insensitive key: 'PLX-4720' and 'plx4720' both become 'plx4720'."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def read_gdsc_expression(path: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cell lines (COSMIC IDs) × gene symbols; empty symbols dropped, duplicated symbols averaged.

    Accepts the plain tab-separated file or a .zip holding it. Returns the matrix and a report of
    what was dropped.
    """
    path = Path(path)
    if not path.exists():
        raise SSDAInputError(str(path), "GDSC expression file not found")
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if not n.endswith("/")]
                if len(members) != 1:
                    raise SSDAInputError(str(path), f"expected one file in the zip, found {len(members)}")
                with archive.open(members[0]) as handle:
                    table = pd.read_csv(handle, sep="\t")
        else:
            table = pd.read_csv(path, sep="\t")
    except SSDAInputError:
        raise
    except Exception as exc:
        raise SSDAInputError(
            str(path), f"not a readable tab-separated GDSC expression file ({type(exc).__name__})"
        ) from None
    if "GENE_SYMBOLS" not in table.columns:
        raise SSDAInputError(
            str(path), "column 'GENE_SYMBOLS' not found; expected the GDSC RMA basal expression file"
        )
    data_columns = [c for c in table.columns if str(c).startswith("DATA.")]
    if not data_columns:
        raise SSDAInputError(str(path), "no 'DATA.<COSMIC_ID>' columns found")
    symbols = table["GENE_SYMBOLS"].astype("string").str.strip()
    empty = symbols.isna() | (symbols == "")
    values = table.loc[~empty, data_columns].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        raise SSDAInputError(
            str(path), "expression values must be numeric (log2 RMA); found non-numeric or empty cells"
        )
    values.index = symbols[~empty].to_numpy()
    n_duplicated = int(values.index.duplicated(keep=False).sum())
    merged = values.groupby(level=0, sort=False).mean()
    try:
        cosmic = [int(str(c).split(".", 1)[1]) for c in data_columns]
    except ValueError:
        raise SSDAInputError(str(path), "column names must be DATA.<COSMIC_ID> with an integer id") from None
    matrix = merged.T
    matrix.index = pd.Index(cosmic, name="cosmic_id")
    matrix.columns = [str(c) for c in matrix.columns]
    matrix = matrix.groupby(level=0).mean()  # a cell line listed twice is averaged too
    report = {
        "genes_in_file": int(len(table)),
        "genes_dropped_empty_symbol": int(empty.sum()),
        "rows_with_duplicated_symbol": n_duplicated,
        "genes": int(matrix.shape[1]),
        "cell_lines": int(matrix.shape[0]),
    }
    return matrix.astype(np.float32), report


def read_gdsc_response(path: str | Path) -> pd.DataFrame:
    """Long-form fitted dose response: cosmic_id, cell_line, tissue, drug, drug_id, dataset, ln_ic50, auc."""
    path = Path(path)
    if not path.exists():
        raise SSDAInputError(str(path), "GDSC dose-response file not found")
    try:
        table = pd.read_excel(path) if path.suffix in (".xlsx", ".xls") else pd.read_csv(path)
    except Exception as exc:
        raise SSDAInputError(
            str(path), f"not a readable dose-response table ({type(exc).__name__})"
        ) from None
    missing = [c for c in RESPONSE_COLUMNS if c not in table.columns]
    if missing:
        raise SSDAInputError(
            str(path), f"missing columns {', '.join(missing)}; expected the GDSC fitted dose-response format"
        )
    frame = table[list(RESPONSE_COLUMNS)].rename(columns=RESPONSE_COLUMNS)
    for column in ("cosmic_id", "drug_id", "ln_ic50", "auc"):
        numeric = pd.to_numeric(frame[column], errors="coerce")
        bad = numeric.isna() & frame[column].notna()
        if bad.any():
            raise SSDAInputError(
                str(path),
                f"column {column.upper()} has non-numeric values "
                f"(first: {frame.loc[bad, column].iloc[0]!r} in row {int(bad.idxmax()) + 2})",
            )
        frame[column] = numeric
    frame = frame.dropna(subset=["cosmic_id", "ln_ic50"])
    frame["cosmic_id"] = frame["cosmic_id"].astype(np.int64)
    frame["drug_id"] = frame["drug_id"].astype("Int64")
    for column in ("cell_line", "tissue", "drug", "dataset"):
        frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


def binarise_ic50(ln_ic50: pd.Series) -> tuple[pd.Series, float]:
    """The paper's labels: 1 (sensitive) when LN_IC50 is below the mean over the given lines."""
    threshold = float(ln_ic50.mean())
    return (ln_ic50 < threshold).astype(np.int8), threshold
