"""Offline gene-ID harmonisation: Entrez IDs, Ensembl IDs and outdated symbols → official human symbols.

Bulk and single-cell files name genes differently (GDSC by symbol, SCAD by Entrez ID, 10x by
Ensembl ID, older files by symbols since renamed), so genes are matched only after every side is
mapped to official symbols with the table shipped in `gene_map/` (org.Hs.eg.db 3.16; see its
README). Nothing is downloaded.

Rules: a user map wins; Entrez and Ensembl IDs (version suffix stripped) map through the table; a
symbol stays when it is official, else maps through an alias that names exactly one gene whose
official symbol the input does not already hold. An alias naming several genes is dropped (it
would silently pick one); an identifier the table does not know is kept as it is, so it still
matches the same identifier on the other side.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ssda_model.errors import SSDAInputError

GENE_TABLE = Path(__file__).parent / "gene_map" / "human_genes.tsv.gz"
ID_TYPES = ("symbol", "entrez", "ensembl")
ROUTES = (
    "user_map",
    "entrez",
    "ensembl",
    "official_symbol",
    "unique_alias",
    "kept_unmapped",
    "alias_taken",
    "dropped_ambiguous",
)
_ENSEMBL = re.compile(r"^(ENS[A-Z]*G\d{11})(?:\.\d+)?(?:_PAR_Y)?$")


@dataclass(frozen=True)
class GeneTable:
    """Official symbols reachable from each kind of identifier (more than one = ambiguous)."""

    entrez: dict[str, str]
    ensembl: dict[str, tuple[str, ...]]
    aliases: dict[str, tuple[str, ...]]
    official: frozenset[str]


@lru_cache(maxsize=2)
def human_gene_table(path: Path = GENE_TABLE) -> GeneTable:
    """The shipped org.Hs.eg.db table, read once per process."""
    with gzip.open(path, "rt") as handle:
        table = pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False)
    ensembl: dict[str, set[str]] = defaultdict(set)
    aliases: dict[str, set[str]] = defaultdict(set)
    for symbol, alias_list, ensembl_list in zip(
        table["symbol"], table["aliases"], table["ensembl_ids"], strict=True
    ):
        for alias in filter(None, alias_list.split("|")):
            aliases[alias].add(symbol)
        for gene in filter(None, ensembl_list.split("|")):
            ensembl[gene].add(symbol)
    return GeneTable(
        entrez=dict(zip(table["entrez_id"], table["symbol"], strict=True)),
        ensembl={k: tuple(sorted(v)) for k, v in ensembl.items()},
        aliases={k: tuple(sorted(v)) for k, v in aliases.items()},
        official=frozenset(table["symbol"]),
    )


def strip_ensembl_version(gene_id: str) -> str:
    """'ENSG00000141510.18' → 'ENSG00000141510' (GENCODE's _PAR_Y copies too); other IDs unchanged."""
    match = _ENSEMBL.match(gene_id.strip())
    return match.group(1) if match else gene_id.strip()


def guess_id_type(ids: list[str]) -> str:
    """'entrez' when every ID is a number, 'ensembl' when every ID is an Ensembl gene ID, else 'symbol'."""
    ids = [str(i).strip() for i in ids]
    if ids and all(i.isdigit() for i in ids):
        return "entrez"
    if ids and all(_ENSEMBL.match(i) for i in ids):
        return "ensembl"
    return "symbol"


@dataclass(frozen=True)
class GeneMapping:
    """Per input identifier its official symbol (None = dropped), and how each got there."""

    ids: list[str]
    symbols: list[str | None]
    routes: list[str]
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def report(self) -> dict[str, int]:
        """How many identifiers took each route, and how many symbols came out (duplicates merged)."""
        counts = Counter(self.routes)
        kept = [s for s in self.symbols if s is not None]
        return {
            **{route: counts.get(route, 0) for route in ROUTES},
            "genes_in": len(self.ids),
            "genes_out": len(set(kept)),
            "merged_duplicates": len(kept) - len(set(kept)),
        }


def map_gene_ids(
    ids: list[str], id_type: str, table: GeneTable | None = None, user_map: dict[str, str] | None = None
) -> GeneMapping:
    """Map `ids` of one `id_type` (symbol | entrez | ensembl) to official symbols (module rules).

    `table` None means no table for the species: only `user_map` applies, the rest is kept.
    """
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {', '.join(ID_TYPES)}, got {id_type!r}")
    user_map = {strip_ensembl_version(k): v for k, v in (user_map or {}).items()}
    keys = [strip_ensembl_version(str(i)) if id_type == "ensembl" else str(i).strip() for i in ids]
    symbols: list[str | None] = []
    routes: list[str] = []
    ambiguous: dict[str, tuple[str, ...]] = {}
    held = {k for k in keys if table is not None and id_type == "symbol" and k in table.official}
    for original, key in zip(ids, keys, strict=True):
        symbol: str | None = key
        route = "kept_unmapped"
        if key in user_map:
            symbol, route = user_map[key], "user_map"
        elif table is None:
            pass
        elif id_type == "entrez" and key in table.entrez:
            symbol, route = table.entrez[key], "entrez"
        elif id_type == "ensembl" and key in table.ensembl:
            candidates = table.ensembl[key]
            symbol, route = (
                (candidates[0], "ensembl") if len(candidates) == 1 else (None, "dropped_ambiguous")
            )
        elif id_type == "symbol" and key in table.official:
            route = "official_symbol"
        elif id_type == "symbol" and key in table.aliases:
            candidates = table.aliases[key]
            if len(candidates) > 1:
                symbol, route = None, "dropped_ambiguous"
            elif candidates[0] in held:
                route = "alias_taken"
            else:
                symbol, route = candidates[0], "unique_alias"
                held.add(symbol)
        if route == "dropped_ambiguous":
            ambiguous[str(original)] = candidates
        symbols.append(symbol)
        routes.append(route)
    return GeneMapping(ids=[str(i) for i in ids], symbols=symbols, routes=routes, ambiguous=ambiguous)


def apply_gene_mapping(
    matrix: np.ndarray | sparse.spmatrix, mapping: GeneMapping
) -> tuple[np.ndarray | sparse.csr_matrix, list[str]]:
    """Columns renamed to their symbols, dropped ones removed, columns sharing a symbol averaged
    (the convention for duplicated genes on log scale). Keeps sparse input sparse."""
    genes = list(dict.fromkeys(s for s in mapping.symbols if s is not None))
    column = {g: j for j, g in enumerate(genes)}
    kept = [(i, s) for i, s in enumerate(mapping.symbols) if s is not None]
    rows, cols = [i for i, _ in kept], [column[s] for _, s in kept]
    counts = np.bincount(cols, minlength=len(genes))
    weights = sparse.csr_matrix(
        (1.0 / counts[cols], (rows, cols)), shape=(len(mapping.symbols), len(genes)), dtype=np.float32
    )
    if sparse.issparse(matrix):
        return sparse.csr_matrix(matrix @ weights, dtype=np.float32), genes
    return np.asarray(np.asarray(matrix, dtype=np.float32) @ weights, dtype=np.float32), genes


def read_user_gene_map(path: str | Path) -> dict[str, str]:
    """A two-column table `<entrez|ensembl|id><TAB>symbol` that overrides the shipped table."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str)
    except Exception as exc:
        raise SSDAInputError(
            str(path), f"not a readable tab-separated gene map ({type(exc).__name__})"
        ) from None
    id_column = next((c for c in ("entrez", "ensembl", "id") if c in table.columns), None)
    if id_column is None or "symbol" not in table.columns:
        raise SSDAInputError(str(path), "expected a column 'symbol' and one of 'entrez', 'ensembl' or 'id'")
    table = table.dropna(subset=[id_column, "symbol"])
    return dict(zip(table[id_column].str.strip(), table["symbol"].str.strip(), strict=True))
