"""Datasets in the SCAD / SSDA4Drug pre-processed format, and Entrez-keyed cells mapped to GDSC symbols."""

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
import yaml

from ssda_assets.catalog import register_partitions


def write_scad(path, n, genes, seed):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(n, len(genes))).round(4), columns=genes,
                         index=[f"{path.stem[:6]}_{i}" for i in range(n)])
    table.insert(0, "response", np.arange(n) % 2)
    table.to_csv(path, sep="\t")


def test_scad_target_and_source_are_used_as_they_are(platform):
    folder = platform.paths.raw / "datasets" / "scad_gefitinib"
    folder.mkdir()
    genes = [str(1000 + i) for i in range(300)]
    write_scad(folder / "Target_expr_resp_z.Gefitinib_tp4k.tsv", 40, genes, 0)
    write_scad(folder / "Source_exprs_resp_z.Gefitinib_tp4k.tsv", 60, genes[:250], 1)
    (folder / "dataset.yaml").write_text(yaml.safe_dump({
        "drugs": ["Gefitinib"], "matrix": "Target_expr_resp_z.Gefitinib_tp4k.tsv",
        "source": "Source_exprs_resp_z.Gefitinib_tp4k.tsv"}))
    platform.materialize(["gdsc_expression", "gdsc_response"])
    register_partitions(platform.instance, platform.paths.raw)
    platform.materialize(["gdsc_labels"], partition_key="gefitinib")
    result = platform.materialize(["sc_dataset"], partition_key="scad_gefitinib")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["qc"].value.startswith("skipped") and metadata["labelled_sensitive"].value == 20
    stored = ad.read_h5ad(platform.paths.data / "single_cell" / "scad_gefitinib.h5ad")
    original = pd.read_csv(folder / "Target_expr_resp_z.Gefitinib_tp4k.tsv", sep="\t", index_col=0)
    assert np.allclose(stored.X, original.drop(columns="response").to_numpy())  # not re-normalised
    platform.materialize(["harmonized_expression"],
                         partition_key=dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "scad_gefitinib"}))
    harmonized = platform.paths.data / "harmonized" / "gefitinib" / "scad_gefitinib"
    source = pd.read_parquet(harmonized / "source.parquet")
    assert len(source) == 60 and (harmonized / "genes.txt").read_text().split() == sorted(genes[:250])


def test_entrez_cells_map_to_gdsc_symbols(platform):
    raw = platform.paths.raw
    folder = raw / "datasets" / "mcf7_entrez"
    folder.mkdir()
    adata = ad.read_h5ad(raw / "datasets" / "mcf7_bortezomib" / "counts.h5ad")
    entrez = {g: str(50000 + i) for i, g in enumerate(adata.var_names)}
    adata.var_names = [entrez[g] for g in adata.var_names]
    adata.write_h5ad(folder / "counts.h5ad")
    manifest = yaml.safe_load((raw / "datasets" / "mcf7_bortezomib" / "dataset.yaml").read_text())
    (folder / "dataset.yaml").write_text(yaml.safe_dump({**manifest, "gene_id": "entrez"}))
    pd.DataFrame({"entrez": list(entrez.values()), "symbol": list(entrez)}).to_csv(raw / "gene_map.tsv", sep="\t",
                                                                                    index=False)
    register_partitions(platform.instance, raw)
    platform.materialize(["gdsc_expression", "gdsc_response"])
    platform.materialize(["gdsc_labels"], partition_key="bortezomib")
    platform.materialize(["sc_dataset"], partition_key="mcf7_entrez")
    result = platform.materialize(["harmonized_expression"],
                                  partition_key=dg.MultiPartitionKey({"drug": "bortezomib", "dataset": "mcf7_entrez"}))
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["shared_genes"].value > 1900
    genes = (platform.paths.data / "harmonized" / "bortezomib" / "mcf7_entrez" / "genes.txt").read_text().split()
    assert all(g.startswith(("GENE", "MT-")) for g in genes)
