"""Single-cell datasets: ingestion with QC, harmonisation with GDSC, and the per-drug cell table."""

from pathlib import Path

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from ssda_assets.catalog import scan
from ssda_assets.defs.gdsc.assets import expression_path, gdsc_expression, gdsc_labels
from ssda_assets.drugs import drug_key
from ssda_assets.failures import input_errors
from ssda_assets.fingerprint import INPUT_HASH, dataset_hash
from ssda_assets.ingest import LABEL, TIME, ingest
from ssda_assets.manifest import Manifest, read_manifest
from ssda_assets.partitions import by_dataset, by_drug, dataset_partitions, task_partitions
from ssda_assets.resources import PlatformPaths
from ssda_assets.storage import replace_rows, write_atomically
from ssda_model.data.genes import highly_variable, read_gene_list, shared_genes
from ssda_model.data.readers import read_h5ad, read_scad_tsv
from ssda_model.errors import SSDAInputError

GENE_MAP = "gene_map.tsv"
TARGET_SCHEMA = ("drug VARCHAR, dataset VARCHAR, cell_id VARCHAR, label TINYINT, time_point VARCHAR, "
                 "n_genes INTEGER, total_counts DOUBLE, pct_counts_mt DOUBLE")


def sc_path(paths: PlatformPaths, dataset: str) -> Path:
    return paths.data / "single_cell" / f"{dataset}.h5ad"


def harmonized_dir(paths: PlatformPaths, drug: str, dataset: str) -> Path:
    return paths.data / "harmonized" / drug / dataset


def _manifest(paths: PlatformPaths, dataset: str) -> Manifest:
    return read_manifest(paths.raw / "datasets" / dataset)


@dg.asset(group_name="single_cell", kinds={"anndata"}, partitions_def=dataset_partitions,
          check_specs=[dg.AssetCheckSpec("unique_cell_ids", asset="sc_dataset", blocking=True),
                       dg.AssetCheckSpec("finite_expression", asset="sc_dataset", blocking=True),
                       dg.AssetCheckSpec("declared_values_occur", asset="sc_dataset", blocking=True)])
def sc_dataset(context: dg.AssetExecutionContext, paths: PlatformPaths) -> dg.MaterializeResult:
    """One dataset folder read as its manifest says, QC'd as the paper (unless already normalised),
    library-size normalised to 1e4 and log1p; labels in obs['response'], time in obs['time_point']."""
    with input_errors():
        manifest = _manifest(paths, context.partition_key)
        read = dataset_hash(manifest.folder)
        adata, report = ingest(manifest)
    write_atomically(sc_path(paths, manifest.name), adata.write_h5ad)
    declared = set()
    if manifest.label is not None:
        declared |= {1.0} if manifest.label.sensitive else set()
        declared |= {0.0} if manifest.label.resistant else set()
    if manifest.labels_from_time:
        declared |= ({1.0} if manifest.time.sensitive else set()) | ({0.0} if manifest.time.resistant else set())
    present = set(pd.unique(adata.obs[LABEL].dropna()))
    times_ok = manifest.time is None or set(manifest.time.order) <= set(adata.obs[TIME].dropna().astype(str))
    values = adata.X.data if hasattr(adata.X, "data") else np.asarray(adata.X)
    obs_preview = adata.obs.head(8).reset_index(names="cell_id")
    return dg.MaterializeResult(
        metadata={"path": str(sc_path(paths, manifest.name)), "format": manifest.format, INPUT_HASH: read,
                  "drugs": ", ".join(manifest.drugs), **{k: v for k, v in report.items()},
                  "labelled_sensitive": int((adata.obs[LABEL] == 1).sum()),
                  "labelled_resistant": int((adata.obs[LABEL] == 0).sum()),
                  "unlabelled": int(adata.obs[LABEL].isna().sum()),
                  "obs_preview": dg.MetadataValue.md(obs_preview.to_markdown(index=False))},
        check_results=[
            dg.AssetCheckResult(check_name="unique_cell_ids", passed=bool(adata.obs_names.is_unique)),
            dg.AssetCheckResult(check_name="finite_expression", passed=bool(np.isfinite(values).all())),
            dg.AssetCheckResult(check_name="declared_values_occur", passed=declared <= present and times_ok)])


class HarmonizeConfig(dg.Config):
    n_top_genes: int = 3000
    gene_list: str | None = None  # a prior gene list file (one gene per line)
    min_shared_genes: int = 200


def _gene_map(paths: PlatformPaths) -> dict[str, str]:
    path = paths.raw / GENE_MAP
    if not path.exists():
        raise SSDAInputError(str(path), "the dataset uses Entrez IDs but GDSC uses symbols: put a two-column "
                                        "table 'entrez<TAB>symbol' here")
    table = pd.read_csv(path, sep="\t", dtype=str)
    if not {"entrez", "symbol"} <= set(table.columns):
        raise SSDAInputError(str(path), "expected columns 'entrez' and 'symbol'")
    return dict(zip(table["entrez"], table["symbol"]))


def _source(paths: PlatformPaths, manifest: Manifest, drug: str, warehouse: DuckDBResource) -> pd.DataFrame:
    """Source rows (index = sample id) with a 'response' column and gene columns."""
    if manifest.source is not None:  # SCAD pre-processed source: used as it is, no re-normalising
        source = read_scad_tsv(manifest.source)
        frame = source.to_df()
        frame.insert(0, LABEL, source.obs[LABEL].astype(int).to_numpy())
        return frame
    expression = pd.read_parquet(expression_path(paths)).set_index("cosmic_id")
    with warehouse.get_connection() as connection:
        labels = connection.execute("SELECT cosmic_id, label FROM gdsc_labels WHERE drug = ?", [drug]).df()
    frame = expression.loc[labels["cosmic_id"]]
    frame.insert(0, LABEL, labels["label"].astype(int).to_numpy())
    return frame


@dg.asset(group_name="single_cell", kinds={"parquet"}, partitions_def=task_partitions, output_required=False,
          automation_condition=dg.AutomationCondition.eager(),
          deps=[dg.AssetDep(gdsc_expression),
                dg.AssetDep(gdsc_labels, partition_mapping=by_drug),
                dg.AssetDep(sc_dataset, partition_mapping=by_dataset)],
          check_specs=[dg.AssetCheckSpec("enough_shared_genes", asset="harmonized_expression", blocking=True)])
def harmonized_expression(context: dg.AssetExecutionContext, config: HarmonizeConfig, paths: PlatformPaths,
                          warehouse: DuckDBResource):
    """Source (GDSC lines with labels) and target (cells) on the same genes: shared genes, then the
    target's highly variable genes, then an optional prior gene list. Values are not scaled here
    (the model z-scores per domain)."""
    keys = context.partition_key.keys_by_dimension
    drug, dataset = keys["drug"], keys["dataset"]
    with input_errors():
        manifest = _manifest(paths, dataset)
        declared = {drug_key(d, paths.raw) for d in manifest.drugs}
    if drug not in declared:
        reason = f"dataset {dataset} does not declare drug {drug}: nothing to harmonise"
        context.log.info(reason)
        yield dg.AssetCheckResult(check_name="enough_shared_genes", passed=False,
                                  severity=dg.AssetCheckSeverity.WARN, description=reason)
        return
    with input_errors():
        source = _source(paths, manifest, drug, warehouse)
        target = read_h5ad(sc_path(paths, dataset))
        if manifest.gene_id == "entrez" and manifest.source is None:
            mapping = _gene_map(paths)
            target = target[:, [g for g in target.var_names if g in mapping]].copy()
            target.var_names = [mapping[g] for g in target.var_names]
            target.var_names_make_unique()
        genes = shared_genes([str(g) for g in source.columns[1:]], list(target.var_names),
                             "gdsc_expression" if manifest.source is None else str(manifest.source),
                             str(manifest.matrix))
        n_shared = len(genes)
        if config.n_top_genes and not manifest.normalized:
            genes = highly_variable(target, genes, config.n_top_genes)
        if config.gene_list:
            listed = read_gene_list(config.gene_list)
            genes = [g for g in genes if g in listed]
    folder = harmonized_dir(paths, drug, dataset)
    target_frame = target[:, genes].to_df()
    target_frame.insert(0, TIME, target.obs[TIME].astype(str).to_numpy() if TIME in target.obs else None)
    target_frame.insert(0, LABEL, target.obs[LABEL].to_numpy())

    def write(tmp: Path) -> None:
        tmp.mkdir()
        source[[LABEL, *genes]].rename_axis("sample_id").reset_index().astype({"sample_id": str}).to_parquet(
            tmp / "source.parquet", index=False)
        target_frame.rename_axis("cell_id").reset_index().to_parquet(tmp / "target.parquet", index=False)
        (tmp / "genes.txt").write_text("\n".join(genes) + "\n")

    write_atomically(folder, write)
    yield dg.MaterializeResult(
        metadata={"path": str(folder), "source_samples": len(source), "cells": target.n_obs,
                  "shared_genes": n_shared, "genes": len(genes),
                  "source": "SCAD source table" if manifest.source is not None else "GDSC"})
    yield dg.AssetCheckResult(check_name="enough_shared_genes", passed=len(genes) >= config.min_shared_genes,
                              metadata={"genes": len(genes), "required": config.min_shared_genes})


@dg.asset(group_name="single_cell", kinds={"duckdb"}, partitions_def=task_partitions, output_required=False,
          automation_condition=dg.AutomationCondition.eager(),
          deps=[dg.AssetDep(sc_dataset, partition_mapping=by_dataset)])
def target_dataset(context: dg.AssetExecutionContext, paths: PlatformPaths, warehouse: DuckDBResource):
    """One row per cell of the dataset for this drug: `SELECT … FROM target_dataset WHERE drug = ?`."""
    keys = context.partition_key.keys_by_dimension
    drug, dataset = keys["drug"], keys["dataset"]
    with input_errors():
        declared = {drug_key(d, paths.raw) for d in _manifest(paths, dataset).drugs}
    if drug not in declared:
        context.log.info(f"dataset {dataset} does not declare drug {drug}: no rows")
        return
    obs = ad.read_h5ad(sc_path(paths, dataset), backed="r").obs
    qc = {c: obs[c].to_numpy() if c in obs else np.nan for c in ("n_genes_by_counts", "total_counts", "pct_counts_mt")}
    frame = pd.DataFrame({"drug": drug, "dataset": dataset, "cell_id": obs.index.astype(str),
                          "label": obs[LABEL].astype("Int8").to_numpy(),
                          "time_point": obs[TIME].astype(str).to_numpy() if TIME in obs else None,
                          "n_genes": qc["n_genes_by_counts"], "total_counts": qc["total_counts"],
                          "pct_counts_mt": qc["pct_counts_mt"]})
    with warehouse.get_connection() as connection:
        replace_rows(connection, "target_dataset", TARGET_SCHEMA, frame, {"drug": drug, "dataset": dataset})
    yield dg.MaterializeResult(metadata={"cells": len(frame), "labelled": int(frame["label"].notna().sum()),
                                         "time_points": int(frame["time_point"].nunique()) if TIME in obs else 0})
