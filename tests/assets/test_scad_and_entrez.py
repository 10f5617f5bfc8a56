"""SCAD / SSDA4Drug pre-processed datasets, gene IDs mapped to symbols, and sources other than GDSC."""

from collections import Counter, defaultdict

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
import yaml
from scipy import io, sparse

from ssda_assets.defs.automation.sensors import new_dataset_sensor
from ssda_assets.raw.catalog import register_partitions
from ssda_assets.raw.partitions import task_key
from ssda_model.data.gene_ids import human_gene_table, map_gene_ids


def write_scad(path, n, genes, seed):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        rng.normal(size=(n, len(genes))).round(4),
        columns=genes,
        index=[f"{path.stem[:6]}_{i}" for i in range(n)],
    )
    table.insert(0, "response", np.arange(n) % 2)
    table.to_csv(path, sep="\t")


def test_scad_target_and_source_are_used_as_they_are(platform):
    folder = platform.paths.raw / "datasets" / "scad_gefitinib"
    folder.mkdir()
    genes = [str(1000 + i) for i in range(300)]
    write_scad(folder / "Target_expr_resp_z.Gefitinib_tp4k.tsv", 40, genes, 0)
    write_scad(folder / "Source_exprs_resp_z.Gefitinib_tp4k.tsv", 60, genes[:250], 1)
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump(
            {
                "drugs": ["Gefitinib"],
                "matrix": "Target_expr_resp_z.Gefitinib_tp4k.tsv",
                "source": "Source_exprs_resp_z.Gefitinib_tp4k.tsv",
            }
        )
    )
    platform.materialize(["gdsc_expression", "gdsc_response"])
    register_partitions(platform.instance, platform.paths.raw)
    platform.materialize(["gdsc_labels"], partition_key="gefitinib")
    result = platform.materialize(["sc_dataset"], partition_key="scad_gefitinib")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["qc"].value.startswith("skipped") and metadata["labelled_sensitive"].value == 20
    stored = ad.read_h5ad(platform.paths.data / "single_cell" / "scad_gefitinib.h5ad")
    original = pd.read_csv(folder / "Target_expr_resp_z.Gefitinib_tp4k.tsv", sep="\t", index_col=0)
    assert np.allclose(stored.X, original.drop(columns="response").to_numpy())  # not re-normalised
    platform.materialize(
        ["harmonized_expression"],
        partition_key=dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "scad_gefitinib"}),
    )
    harmonized = platform.paths.data / "harmonized" / "gefitinib" / "scad_gefitinib"
    source = pd.read_parquet(harmonized / "source.parquet")
    symbols = map_gene_ids(genes[:250], "entrez", human_gene_table()).symbols  # Entrez IDs become symbols
    assert len(source) == 60 and (harmonized / "genes.txt").read_text().split() == sorted(set(symbols))


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
    pd.DataFrame({"entrez": list(entrez.values()), "symbol": list(entrez)}).to_csv(
        raw / "gene_map.tsv", sep="\t", index=False
    )
    register_partitions(platform.instance, raw)
    platform.materialize(["gdsc_expression", "gdsc_response"])
    platform.materialize(["gdsc_labels"], partition_key="bortezomib")
    platform.materialize(["sc_dataset"], partition_key="mcf7_entrez")
    result = platform.materialize(
        ["harmonized_expression"],
        partition_key=dg.MultiPartitionKey({"drug": "bortezomib", "dataset": "mcf7_entrez"}),
    )
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["shared_genes"].value > 1900
    genes = (
        (platform.paths.data / "harmonized" / "bortezomib" / "mcf7_entrez" / "genes.txt").read_text().split()
    )
    assert all(g.startswith(("GENE", "MT-")) for g in genes)


def _genes_with_every_id(n: int) -> pd.DataFrame:
    """n genes with one Entrez ID, one Ensembl ID and an outdated symbol that names only them."""
    table = human_gene_table()
    ensembl, aliases = defaultdict(list), defaultdict(list)
    for gene_id, symbols in table.ensembl.items():
        ensembl[symbols[0]] += [gene_id] if len(symbols) == 1 else []
    for alias, symbols in table.aliases.items():
        aliases[symbols[0]] += [alias] if len(symbols) == 1 and alias not in table.official else []
    once = Counter(table.entrez.values())
    rows = [
        {"entrez": e, "symbol": s, "ensembl": ensembl[s][0], "alias": aliases[s][0]}
        for e, s in table.entrez.items()
        if once[s] == 1 and len(ensembl[s]) == 1 and aliases[s]
    ]
    return pd.DataFrame(rows[:n])


def _write_dataset(folder, drug, manifest, source_genes, rng):
    folder.mkdir(parents=True)
    write_scad(folder / "Source_exprs_resp_z.tsv", 60, source_genes, 7)
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump({"drugs": [drug], "source": "Source_exprs_resp_z.tsv", "normalized": True, **manifest})
    )


def test_entrez_ensembl_and_alias_keyed_cells_harmonize_to_the_same_genes_with_any_drug(platform):
    """Three datasets of one drug GDSC never screened, keyed by Entrez IDs (SCAD file), Ensembl IDs with
    version suffixes (10x folder) and outdated symbols (h5ad, plus an ambiguous alias), all with a SCAD
    source table keyed by Entrez IDs: the same genes come out, and the ambiguous alias is reported."""
    genes = _genes_with_every_id(220)
    raw, rng = platform.paths.raw, np.random.default_rng(3)
    values = rng.normal(size=(40, len(genes))).round(4)
    labels = np.arange(40) % 2
    cells = [f"cell{i}" for i in range(40)]

    scad = raw / "datasets" / "by_entrez"
    _write_dataset(scad, "Notingdsc", {"matrix": "Target_expr_resp_z.x.tsv"}, list(genes["entrez"]), rng)
    table = pd.DataFrame(values, columns=genes["entrez"], index=cells)
    table.insert(0, "response", labels)
    table.to_csv(scad / "Target_expr_resp_z.x.tsv", sep="\t")

    tenx = raw / "datasets" / "by_ensembl"
    _write_dataset(
        tenx,
        "Notingdsc",
        {
            "matrix": "matrix",
            "gene_id": "ensembl",
            "obs": "cells.csv",
            "label": {"column": "response", "sensitive": [1], "resistant": [0]},
        },
        list(genes["entrez"]),
        rng,
    )
    (tenx / "matrix").mkdir()
    io.mmwrite(tenx / "matrix" / "matrix.mtx", sparse.coo_matrix(values.T))
    pd.DataFrame(
        {"id": [f"{e}.{i % 20 + 1}" for i, e in enumerate(genes["ensembl"])], "symbol": genes["symbol"]}
    ).to_csv(tenx / "matrix" / "genes.tsv", sep="\t", header=False, index=False)
    (tenx / "matrix" / "barcodes.tsv").write_text("\n".join(cells) + "\n")
    pd.DataFrame({"response": labels}, index=pd.Index(cells, name="cell")).to_csv(tenx / "cells.csv")

    alias = raw / "datasets" / "by_alias"
    _write_dataset(
        alias,
        "Notingdsc",
        {"matrix": "cells.h5ad", "label": {"column": "response", "sensitive": [1], "resistant": [0]}},
        list(genes["entrez"]),
        rng,
    )
    extra = rng.normal(size=(40, 1)).round(4)
    ad.AnnData(
        X=np.hstack([values, extra]).astype(np.float32),
        obs=pd.DataFrame({"response": labels}, index=cells),
        var=pd.DataFrame(index=[*genes["alias"], "A1B"]),
    ).write_h5ad(alias / "cells.h5ad")

    register_partitions(platform.instance, raw)
    outputs = {}
    for dataset in ("by_entrez", "by_ensembl", "by_alias"):
        platform.materialize(["sc_dataset"], partition_key=dataset)
        result = platform.materialize(["harmonized_expression"], partition_key=task_key("notingdsc", dataset))
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        folder = platform.paths.data / "harmonized" / "notingdsc" / dataset
        outputs[dataset] = (
            (folder / "genes.txt").read_text().split(),
            pd.read_parquet(folder / "target.parquet"),
            metadata,
        )
    expected = sorted(genes["symbol"])
    for dataset, (harmonized, target, metadata) in outputs.items():
        assert harmonized == expected, dataset
        assert np.allclose(target[expected].to_numpy(), outputs["by_entrez"][1][expected].to_numpy()), dataset
        assert metadata["genes_mapped"].value["source"]["entrez"] == 220
    routes = {d: o[2]["genes_mapped"].value["target"] for d, o in outputs.items()}
    assert (
        routes["by_entrez"]["entrez"]
        == routes["by_ensembl"]["ensembl"]
        == routes["by_alias"]["unique_alias"]
        == 220
    )
    assert routes["by_alias"]["dropped_ambiguous"] == 1 and routes["by_entrez"]["dropped_ambiguous"] == 0
    assert outputs["by_alias"][2]["dropped_ambiguous"].value == "- target: A1B → A1BG / SNTB1"


def test_a_scad_source_dataset_follows_even_when_gdsc_lacks_the_drug(platform):
    """gdsc_labels[drug] fails (the drug is not in GDSC), yet automation requests the harmonisation of
    the dataset that brings its own SCAD source, and it materializes."""
    folder = platform.paths.raw / "datasets" / "own_source"
    folder.mkdir()
    genes = [str(1000 + i) for i in range(300)]
    write_scad(folder / "Target_expr_resp_z.Newdrug_tp4k.tsv", 40, genes, 0)
    write_scad(folder / "Source_exprs_resp_z.Newdrug_tp4k.tsv", 60, genes, 1)
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump(
            {
                "drugs": ["Newdrug"],
                "matrix": "Target_expr_resp_z.Newdrug_tp4k.tsv",
                "source": "Source_exprs_resp_z.Newdrug_tp4k.tsv",
            }
        )
    )
    sensed = new_dataset_sensor(
        dg.build_sensor_context(instance=platform.instance, resources={"paths": platform.paths})
    )
    requested = {(tuple(r.asset_selection), r.partition_key) for r in sensed.run_requests}
    assert ((dg.AssetKey("sc_dataset"),), "own_source") in requested
    assert ((dg.AssetKey("gdsc_labels"),), "newdrug") not in requested  # it trains on its own source
    added = {(r.partitions_def_name, tuple(r.partition_keys)) for r in sensed.dynamic_partitions_requests}
    assert ("drug", ("newdrug",)) in added  # the drug is known, only its GDSC labels are not asked for
    register_partitions(platform.instance, platform.paths.raw)
    platform.materialize(["gdsc_expression", "gdsc_response"])
    selection = dg.AssetSelection.assets("harmonized_expression", "target_dataset")
    tick = dg.evaluate_automation_conditions(
        defs=platform.defs, instance=platform.instance, asset_selection=selection
    )
    labels = platform.materialize(["gdsc_labels"], partition_key="newdrug", raise_on_error=False)
    assert not labels.success
    platform.materialize(["sc_dataset"], partition_key="own_source")

    task = task_key("newdrug", "own_source")
    tick = dg.evaluate_automation_conditions(
        defs=platform.defs, instance=platform.instance, asset_selection=selection, cursor=tick.cursor
    )
    # only the pair its manifest declares: no run for (bortezomib, own_source) and the like
    assert tick.get_requested_partitions(dg.AssetKey("harmonized_expression")) == {task}
    assert tick.get_requested_partitions(dg.AssetKey("target_dataset")) == {task}
    result = platform.materialize(["harmonized_expression"], partition_key=task)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["source"].value == "SCAD source table" and metadata["source_samples"].value == 60


def test_a_gdsc_source_task_without_labels_fails_saying_so(platform):
    register_partitions(platform.instance, platform.paths.raw)
    platform.materialize(["gdsc_expression", "gdsc_response"])
    platform.materialize(["sc_dataset"], partition_key="mcf7_bortezomib")
    result = platform.materialize(
        ["harmonized_expression"],
        raise_on_error=False,
        partition_key=task_key("bortezomib", "mcf7_bortezomib"),
    )
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "no labels for drug 'bortezomib': materialize gdsc_labels[bortezomib] first" in failure
