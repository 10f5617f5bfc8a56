"""Single-cell datasets: ingestion with QC, harmonisation with GDSC, and the per-drug cell table."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_duckdb import DuckDBResource
from pydantic import Field
from scipy import sparse

from ssda_assets.defs.automation.conditions import DeclaredTask
from ssda_assets.defs.gdsc.assets import gdsc_expression, gdsc_labels
from ssda_assets.operations.failures import input_errors
from ssda_assets.raw.drugs import drug_key
from ssda_assets.raw.fingerprint import INPUT_HASH, dataset_hash
from ssda_assets.raw.ingest import LABEL, TIME, Ingested, ingest, space_estimate
from ssda_assets.raw.manifest import Manifest, read_manifest
from ssda_assets.raw.partitions import by_dataset, by_drug, dataset_partitions, task_of, task_partitions
from ssda_assets.resources import PlatformPaths
from ssda_assets.storage.table_metadata import OWNERS, schema_of_ddl, table_metadata
from ssda_assets.storage.writes import replace_rows, write_atomically
from ssda_model.analysis.sampling import strata_of, stratified_sample
from ssda_model.data.gene_ids import (
    GeneMapping,
    apply_gene_mapping,
    guess_id_type,
    human_gene_table,
    map_gene_ids,
    read_user_gene_map,
)
from ssda_model.data.genes import highly_variable, read_gene_list, shared_genes
from ssda_model.data.qc import BLOCK
from ssda_model.data.readers import close_h5ad, open_h5ad, read_scad_tsv, row_blocks
from ssda_model.errors import SSDAInputError

# The assets' code version: bump it when a change here changes what an asset writes, so the UI marks
# materializations made by the old code as stale.
CODE_VERSION = "1"
GENE_MAP = "gene_map.tsv"
TARGET_SCHEMA = (
    "drug VARCHAR, dataset VARCHAR, cell_id VARCHAR, label TINYINT, time_point VARCHAR, "
    "n_genes INTEGER, total_counts DOUBLE, pct_counts_mt DOUBLE"
)


def _manifest(paths: PlatformPaths, dataset: str) -> Manifest:
    return read_manifest(paths.raw / "datasets" / dataset)


@dg.asset(
    group_name="single_cell",
    kinds={"anndata"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=dataset_partitions,
    check_specs=[
        dg.AssetCheckSpec("unique_cell_ids", asset="sc_dataset", blocking=True),
        dg.AssetCheckSpec("finite_expression", asset="sc_dataset", blocking=True),
        dg.AssetCheckSpec("declared_values_occur", asset="sc_dataset", blocking=True),
    ],
)
def sc_dataset(context: dg.AssetExecutionContext, paths: PlatformPaths) -> dg.MaterializeResult:
    """One dataset folder read as its manifest says, QC'd as the paper (unless already normalised),
    library-size normalised to 1e4 and log1p; labels in obs['response'], time in obs['time_point']."""
    with input_errors():
        manifest = _manifest(paths, context.partition_key)
        read = dataset_hash(manifest.folder)
        written: list[Ingested] = []  # ingest writes block by block into write_atomically's staging path
        space = paths.space_needed(f"ingesting {manifest.name}", estimate=space_estimate(manifest.folder))
        space.check()
        with space.translated():
            write_atomically(
                paths.sc_dataset(manifest.name), lambda tmp: written.append(ingest(manifest, tmp))
            )
    obs, report = written[0].obs, written[0].report
    declared = set()
    if manifest.label is not None:
        declared |= {1.0} if manifest.label.sensitive else set()
        declared |= {0.0} if manifest.label.resistant else set()
    if manifest.labels_from_time:
        declared |= ({1.0} if manifest.time.sensitive else set()) | (
            {0.0} if manifest.time.resistant else set()
        )
    present = set(pd.unique(obs[LABEL].dropna()))
    times_ok = manifest.time is None or set(manifest.time.order) <= set(obs[TIME].dropna().astype(str))
    obs_preview = obs.head(8).reset_index(names="cell_id")
    return dg.MaterializeResult(
        metadata={
            "path": str(paths.sc_dataset(manifest.name)),
            "format": manifest.format,
            INPUT_HASH: read,
            "drugs": ", ".join(manifest.drugs),
            **{k: v for k, v in report.items()},
            "labelled_sensitive": int((obs[LABEL] == 1).sum()),
            "labelled_resistant": int((obs[LABEL] == 0).sum()),
            "unlabelled": int(obs[LABEL].isna().sum()),
            "obs_preview": dg.MetadataValue.md(obs_preview.to_markdown(index=False)),
        },
        check_results=[
            dg.AssetCheckResult(check_name="unique_cell_ids", passed=bool(obs.index.is_unique)),
            dg.AssetCheckResult(check_name="finite_expression", passed=written[0].finite),
            dg.AssetCheckResult(check_name="declared_values_occur", passed=declared <= present and times_ok),
        ],
    )


class HarmonizeConfig(dg.Config):
    n_top_genes: int = Field(
        default=3000,
        description="Keep the target's highly variable genes, this many (0: every shared gene; "
        "skipped for a dataset that is already normalised).",
    )
    gene_list: str | None = Field(
        default=None, description="A prior gene list file (one gene per line) the genes are restricted to."
    )
    min_shared_genes: int = Field(
        default=200, description="The enough_shared_genes check fails below this many genes."
    )


def _user_gene_map(paths: PlatformPaths) -> dict[str, str]:
    """`raw/gene_map.tsv` (`entrez|ensembl|id<TAB>symbol`), overriding the shipped table; {} when absent."""
    path = paths.raw / GENE_MAP
    return read_user_gene_map(path) if path.exists() else {}


def _to_symbols(
    matrix, ids: list[str], id_type: str, manifest: Manifest, user_map: dict[str, str]
) -> tuple[object, list[str], GeneMapping]:
    """Columns renamed to official symbols (the shipped human table; mouse data uses the user map only)."""
    table = human_gene_table() if manifest.species == "human" else None
    mapping = map_gene_ids(ids, id_type, table, user_map)
    matrix, genes = apply_gene_mapping(matrix, mapping)
    return matrix, genes, mapping


def _source(
    paths: PlatformPaths, manifest: Manifest, drug: str, warehouse: DuckDBResource, user_map: dict[str, str]
) -> tuple[pd.DataFrame, GeneMapping]:
    """Source rows (index = sample id) with a 'response' column and gene columns named by symbol.

    A SCAD source table is used as it is (no re-normalising, no GDSC labels: the drug need not be
    in GDSC); its gene IDs are recognised by their form (Entrez numbers, Ensembl IDs or symbols).
    """
    if manifest.source is not None:
        table = read_scad_tsv(manifest.source)
        ids, labels, values = list(table.var_names), table.obs[LABEL].astype(int).to_numpy(), table.X
        id_type, index = guess_id_type(ids), table.obs_names
    else:
        expression = pd.read_parquet(paths.gdsc_expression).set_index("cosmic_id")
        with warehouse.get_connection() as connection:
            labelled = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'gdsc_labels'"
            ).fetchone()[0]
            rows = (
                connection.execute("SELECT cosmic_id, label FROM gdsc_labels WHERE drug = ?", [drug]).df()
                if labelled
                else pd.DataFrame()
            )
        if rows.empty:
            raise SSDAInputError(
                "gdsc_labels",
                f"no labels for drug {drug!r}: materialize gdsc_labels[{drug}] "
                "first (the drug must be in the GDSC response table), or give the "
                "dataset a SCAD source table (source: in its dataset.yaml)",
            )
        selected = expression.loc[rows["cosmic_id"]]
        ids, labels, values = (
            list(selected.columns),
            rows["label"].astype(int).to_numpy(),
            selected.to_numpy(),
        )
        id_type, index = "symbol", selected.index
    values, genes, mapping = _to_symbols(values, ids, id_type, manifest, user_map)
    frame = pd.DataFrame(values, index=index, columns=genes)
    frame.insert(0, LABEL, labels)
    return frame, mapping


HVG_CELLS = 20_000  # highly variable genes from a stratified sample of at most this many cells


@dataclass
class _TargetCells:
    """The dataset's cells on official symbols, read from the backed .h5ad a block at a time and
    only on the columns whose symbol the source has: a whole transcriptome never reaches memory.
    `mapping` covers every column, for the report."""

    cells: ad.AnnData
    mapping: GeneMapping
    needed: np.ndarray

    @classmethod
    def open(cls, path: Path, manifest: Manifest, user_map: dict[str, str], wanted: set[str]):
        cells = open_h5ad(path)
        table = human_gene_table() if manifest.species == "human" else None
        mapping = map_gene_ids(list(map(str, cells.var_names)), manifest.gene_id, table, user_map)
        return cls(cells, mapping, np.array([s is not None and s in wanted for s in mapping.symbols]))

    @property
    def genes(self) -> list[str]:
        return list(dict.fromkeys(s for s, n in zip(self.mapping.symbols, self.needed, strict=True) if n))

    def blocks(self, rows: np.ndarray | None = None) -> Iterator[ad.AnnData]:
        """The cells (all, or the sorted `rows`) a block at a time, on symbols."""
        kept = np.flatnonzero(self.needed)
        columns = (self.mapping.ids, self.mapping.symbols, self.mapping.routes)
        narrowed = GeneMapping(*([column[i] for i in kept] for column in columns))
        for positions, values in row_blocks(self.cells, BLOCK, rows, self.needed):
            matrix, genes = apply_gene_mapping(values, narrowed)
            yield ad.AnnData(X=matrix, obs=self.cells.obs.iloc[positions], var=pd.DataFrame(index=genes))

    def sample(self, size: int) -> ad.AnnData:
        """A seeded sample of at most `size` cells stratified by label and time point, in memory."""
        obs = self.cells.obs
        strata = strata_of(*(obs[c].to_numpy() for c in (LABEL, TIME) if c in obs))
        return ad.concat(list(self.blocks(stratified_sample(strata, size, seed=0))))


def write_target(path: Path, blocks: Iterable[ad.AnnData], genes: list[str]) -> None:
    """cell_id, response, time_point and one column per gene of `genes`, a row group per block of
    cells, so only one block is ever dense. Parquet's dictionary and run-length encoding store the
    zeros of a column in a few bytes per run: the file follows the nonzeros."""
    writer = None
    for part in blocks:
        values = sparse.csr_matrix(part[:, genes].X).toarray()
        frame = pd.DataFrame(values, columns=genes, index=part.obs_names.astype(str))
        frame.insert(0, TIME, part.obs[TIME].astype(str).to_numpy() if TIME in part.obs else None)
        frame.insert(0, LABEL, part.obs[LABEL].to_numpy(float))
        table = pa.Table.from_pandas(frame.rename_axis("cell_id").reset_index(), preserve_index=False)
        table = table.replace_schema_metadata(None)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None  # QC leaves at least one cell
    writer.close()


def _gene_id_metadata(source: GeneMapping, target: GeneMapping) -> dict[str, dg.MetadataValue]:
    """How many genes each route mapped on each side, and the ambiguous identifiers dropped."""
    reports = {"source": source.report(), "target": target.report()}
    table = pd.DataFrame(reports).rename_axis("route").reset_index()
    dropped = [
        f"{side}: {gene_id} → {' / '.join(options)}"
        for side, mapping in (("source", source), ("target", target))
        for gene_id, options in mapping.ambiguous.items()
    ]
    return {
        "gene_id_routes": dg.MetadataValue.md(table.to_markdown(index=False)),
        "genes_mapped": dg.MetadataValue.json(reports),
        "dropped_ambiguous": dg.MetadataValue.md("\n".join(f"- {line}" for line in dropped) or "none"),
    }


# Like eager(), except that a missing gdsc_labels[drug] does not hold a task back (a dataset with a
# SCAD source table needs no GDSC labels, and one without fails with a clear message instead), and
# only for the (drug, dataset) pairs a manifest declares.
HARMONIZE_WHEN = (
    dg.AutomationCondition.eager().replace(
        "any_deps_missing",
        dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets("gdsc_labels")),
    )
    & DeclaredTask()
)
TARGET_WHEN = dg.AutomationCondition.eager() & DeclaredTask()  # its one input is per dataset


@dg.asset(
    group_name="single_cell",
    kinds={"parquet"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    output_required=False,
    automation_condition=HARMONIZE_WHEN,
    deps=[
        dg.AssetDep(gdsc_expression),
        dg.AssetDep(gdsc_labels, partition_mapping=by_drug),
        dg.AssetDep(sc_dataset, partition_mapping=by_dataset),
    ],
    check_specs=[dg.AssetCheckSpec("enough_shared_genes", asset="harmonized_expression", blocking=True)],
)
def harmonized_expression(
    context: dg.AssetExecutionContext,
    config: HarmonizeConfig,
    paths: PlatformPaths,
    warehouse: DuckDBResource,
):
    """Source (GDSC lines with labels, or the dataset's SCAD source table) and target (cells) on the
    same genes: both sides mapped to official symbols, shared genes, then the target's highly
    variable genes, then an optional prior gene list. Values are not scaled here (the model
    z-scores per domain)."""
    drug, dataset = task_of(context.partition_key)
    with input_errors():
        manifest = _manifest(paths, dataset)
        declared = {drug_key(d, paths.raw) for d in manifest.drugs}
    if drug not in declared:
        reason = f"dataset {dataset} does not declare drug {drug}: nothing to harmonise"
        context.log.info(reason)
        yield dg.AssetCheckResult(
            check_name="enough_shared_genes",
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=reason,
        )
        return
    with input_errors():
        user_map = _user_gene_map(paths)
        source, source_mapping = _source(paths, manifest, drug, warehouse, user_map)
        target = _TargetCells.open(paths.sc_dataset(dataset), manifest, user_map, set(source.columns[1:]))
        try:  # the backed file stays open until the target is written
            genes = shared_genes(
                [str(g) for g in source.columns[1:]],
                target.genes,
                "gdsc_expression" if manifest.source is None else str(manifest.source),
                str(manifest.matrix),
            )
            n_shared = len(genes)
            if config.n_top_genes and not manifest.normalized:
                genes = highly_variable(target.sample(HVG_CELLS), genes, config.n_top_genes)
            if config.gene_list:
                listed = read_gene_list(config.gene_list)
                genes = [g for g in genes if g in listed]
        except BaseException:
            close_h5ad(target.cells)
            raise
    folder = paths.harmonized(drug, dataset)

    def write(tmp: Path) -> None:
        tmp.mkdir()
        source[[LABEL, *genes]].rename_axis("sample_id").reset_index().astype({"sample_id": str}).to_parquet(
            tmp / "source.parquet", index=False
        )
        write_target(tmp / "target.parquet", target.blocks(), genes)
        (tmp / "genes.txt").write_text("\n".join(genes) + "\n")

    try:
        write_atomically(folder, write)
    finally:
        close_h5ad(target.cells)
    yield dg.MaterializeResult(
        metadata={
            "path": str(folder),
            "source_samples": len(source),
            # the target table (target.parquet): one row per cell
            **table_metadata(
                target.cells.n_obs,
                schema_of_ddl("cell_id VARCHAR, response DOUBLE, time_point VARCHAR", len(genes)),
            ),
            "hvg": (
                "skipped: the matrix is declared normalized (z-scored values carry no mean-variance "
                "trend to rank genes by); every shared gene is kept"
                if manifest.normalized
                else f"{len(genes)} of {n_shared} shared genes (seurat flavour, n_top_genes "
                f"{config.n_top_genes}, on {min(HVG_CELLS, target.cells.n_obs)} sampled cells)"
                if config.n_top_genes
                else "off (n_top_genes 0): every shared gene is kept"
            ),
            "hvg_cells": min(HVG_CELLS, target.cells.n_obs),
            "shared_genes": n_shared,
            "genes": len(genes),
            "gene_id": manifest.gene_id,
            "source": "SCAD source table" if manifest.source is not None else "GDSC",
            **_gene_id_metadata(source_mapping, target.mapping),
        }
    )
    yield dg.AssetCheckResult(
        check_name="enough_shared_genes",
        passed=len(genes) >= config.min_shared_genes,
        metadata={"genes": len(genes), "required": config.min_shared_genes},
    )


@dg.asset(
    group_name="single_cell",
    kinds={"duckdb"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    output_required=False,
    automation_condition=TARGET_WHEN,
    deps=[dg.AssetDep(sc_dataset, partition_mapping=by_dataset)],
)
def target_dataset(context: dg.AssetExecutionContext, paths: PlatformPaths, warehouse: DuckDBResource):
    """One row per cell of the dataset for this drug: `SELECT … FROM target_dataset WHERE drug = ?`."""
    drug, dataset = task_of(context.partition_key)
    with input_errors():
        declared = {drug_key(d, paths.raw) for d in _manifest(paths, dataset).drugs}
    if drug not in declared:
        context.log.info(f"dataset {dataset} does not declare drug {drug}: no rows")
        return
    cells = open_h5ad(paths.sc_dataset(dataset))
    obs = cells.obs
    close_h5ad(cells)
    qc = {
        c: obs[c].to_numpy() if c in obs else np.nan
        for c in ("n_genes_by_counts", "total_counts", "pct_counts_mt")
    }
    frame = pd.DataFrame(
        {
            "drug": drug,
            "dataset": dataset,
            "cell_id": obs.index.astype(str),
            "label": obs[LABEL].astype("Int8").to_numpy(),
            "time_point": obs[TIME].astype(str).to_numpy() if TIME in obs else None,
            "n_genes": qc["n_genes_by_counts"],
            "total_counts": qc["total_counts"],
            "pct_counts_mt": qc["pct_counts_mt"],
        }
    )
    with warehouse.get_connection() as connection:
        replace_rows(connection, "target_dataset", TARGET_SCHEMA, frame, {"drug": drug, "dataset": dataset})
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(len(frame), schema_of_ddl(TARGET_SCHEMA)),
            "labelled": int(frame["label"].notna().sum()),
            "time_points": int(frame["time_point"].nunique()) if TIME in obs else 0,
        }
    )
