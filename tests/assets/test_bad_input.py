"""Bad input fails the materialization with a message naming the file and the problem, and every
earlier output (parquet, h5ad, DuckDB rows) stays exactly as it was."""

import hashlib
import shutil

import anndata as ad
import dagster as dg
import pandas as pd
import pytest
import yaml

from ssda_assets.raw.catalog import scan

JHU = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})


@pytest.fixture(scope="module")
def snapshot(built_platform):
    def take() -> dict:
        files = sorted(
            p for p in built_platform.paths.data.rglob("*") if p.is_file() and "raw" not in p.parts
        )
        digests = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        for table in ("gdsc_response", "gdsc_labels", "target_dataset"):
            digests[table] = built_platform.query(f"SELECT * FROM {table} ORDER BY ALL").to_csv()
        return digests

    return take


@pytest.fixture
def raw(built_platform, snapshot):
    """The raw zone, restored after the test; the test must leave every output as it found it."""
    raw_dir = built_platform.paths.raw
    backup = raw_dir.parent / "raw_backup"
    shutil.copytree(raw_dir, backup)
    before = snapshot()
    yield raw_dir
    after = snapshot()
    shutil.rmtree(raw_dir)
    backup.rename(raw_dir)
    assert {k: after.get(k) for k in before} == before, "a failed materialization changed earlier outputs"


def fails_with(platform, names, partition_key=None) -> str:
    result = platform.materialize(names, partition_key=partition_key, raise_on_error=False)
    assert not result.success
    failures = result.get_step_failure_events()
    return failures[0].event_specific_data.error.message


def edit_manifest(raw, dataset, **changes):
    path = raw / "datasets" / dataset / "dataset.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest.update(changes)
    path.write_text(yaml.safe_dump(manifest))
    return manifest


def test_missing_gdsc_expression(built_platform, raw):
    (raw / "Cell_line_RMA_proc_basalExp.txt").unlink()
    message = fails_with(built_platform, ["gdsc_expression"])
    assert str(raw) in message and "no GDSC expression file found" in message


def test_malformed_dose_response(built_platform, raw):
    path = raw / "GDSC2_fitted_dose_response_demo.csv"
    pd.read_csv(path).drop(columns=["LN_IC50"]).to_csv(path, index=False)
    message = fails_with(built_platform, ["gdsc_response"])
    assert path.name in message and "missing columns LN_IC50" in message


def test_non_numeric_ic50(built_platform, raw):
    path = raw / "GDSC2_fitted_dose_response_demo.csv"
    table = pd.read_csv(path)
    table["LN_IC50"] = table["LN_IC50"].astype(object)
    table.loc[3, "LN_IC50"] = "n/a?"
    table.to_csv(path, index=False)
    message = fails_with(built_platform, ["gdsc_response"])
    assert "LN_IC50 has non-numeric values" in message and "'n/a?'" in message


def test_manifest_problems_are_reported_all_at_once(built_platform, raw):
    edit_manifest(raw, "jhu006_gefitinib", colour="blue", normalized="maybe", species="martian")
    message = fails_with(built_platform, ["sc_dataset"], "jhu006_gefitinib")
    assert "dataset.yaml" in message
    for problem in (
        "unknown keys colour",
        "'normalized' must be true or false",
        "'species' must be human or mouse",
    ):
        assert problem in message


def test_label_value_that_never_occurs(built_platform, raw):
    edit_manifest(
        raw,
        "jhu006_gefitinib",
        label={"column": "condition", "sensitive": ["parental", "naive"], "resistant": ["resistant"]},
    )
    message = fails_with(built_platform, ["sc_dataset"], "jhu006_gefitinib")
    assert "dataset.yaml" in message and "'naive' never occur" in message


def test_no_gene_overlap(built_platform, raw):
    folder = raw / "datasets" / "mouse_bortezomib"
    shutil.copytree(raw / "datasets" / "mcf7_bortezomib", folder)
    adata = ad.read_h5ad(folder / "counts.h5ad")
    adata.var_names = [f"Mouse{i}" for i in range(adata.n_vars)]
    adata.write_h5ad(folder / "counts.h5ad")
    built_platform.instance.add_dynamic_partitions("dataset", ["mouse_bortezomib"])
    assert built_platform.materialize(["sc_dataset"], partition_key="mouse_bortezomib").success
    message = fails_with(
        built_platform,
        ["harmonized_expression"],
        dg.MultiPartitionKey({"drug": "bortezomib", "dataset": "mouse_bortezomib"}),
    )
    assert "only 0 genes are shared" in message and "counts.h5ad" in message


@pytest.mark.parametrize("problem", ["negative", "duplicated"])
def test_bad_counts(built_platform, raw, problem):
    path = raw / "datasets" / "pc9_erlotinib" / "counts.h5ad"
    adata = ad.read_h5ad(path)
    if problem == "negative":
        adata.X = adata.X.toarray()
        adata.X[10, 10] = -3
        expected = "counts must be non-negative"
    else:
        adata.obs_names = ["PC9_0001"] + list(adata.obs_names[1:])
        expected = "duplicated cell barcodes (first: 'PC9_0001')"
    adata.write_h5ad(path)
    message = fails_with(built_platform, ["sc_dataset"], "pc9_erlotinib")
    assert "counts.h5ad" in message and expected in message


def test_non_numeric_count_table(built_platform, raw):
    folder = raw / "datasets" / "jhu006_gefitinib"
    (folder / "counts.csv").write_text("cell,GENE0001,GENE0002\nc1,3,abc\nc2,1,2\n")
    edit_manifest(
        raw, "jhu006_gefitinib", matrix="counts.csv", orientation="cells_by_genes", obs=None, label=None
    )
    message = fails_with(built_platform, ["sc_dataset"], "jhu006_gefitinib")
    assert "counts.csv" in message and "counts must be numeric" in message


def test_unknown_drug_lists_the_closest_names(built_platform, raw):
    built_platform.instance.add_dynamic_partitions("drug", ["gefitnib"])
    message = fails_with(built_platform, ["gdsc_labels"], "gefitnib")
    assert (
        "'gefitnib' is not in the GDSC response table" in message
        and "gefitinib" in message.split("closest")[1]
    )


def test_bad_dataset_folder_name_is_skipped_with_a_reason(raw):
    shutil.copytree(raw / "datasets" / "jhu006_gefitinib", raw / "datasets" / "bad name!")
    catalog = scan(raw)
    assert "bad name!" not in catalog.manifests
    assert "letters, digits" in catalog.invalid["bad name!"] and "bad name!" in catalog.invalid["bad name!"]
    assert set(catalog.manifests) == {"jhu006_gefitinib", "mcf7_bortezomib", "pc9_erlotinib"}


@pytest.mark.parametrize("matrix", ["every_cell_fails_qc", "header_only"])
def test_a_dataset_with_no_cell_left_says_what_each_qc_rule_removed(built_platform, raw, matrix):
    folder = raw / "datasets" / "jhu006_gefitinib"
    genes = [f"GENE{i:04d}" for i in range(1, 301)]
    rows = [
        f"c{i}," + ",".join("1" if g < 50 else "0" for g in range(300)) for i in range(40)
    ]  # 50 genes per cell
    rows = rows if matrix != "header_only" else []
    (folder / "counts.csv").write_text("\n".join(["cell," + ",".join(genes), *rows]) + "\n")
    edit_manifest(
        raw, "jhu006_gefitinib", matrix="counts.csv", orientation="cells_by_genes", obs=None, label=None
    )
    message = fails_with(built_platform, ["sc_dataset"], "jhu006_gefitinib")
    assert (
        "jhu006_gefitinib/counts.csv" in message
        and "\n" not in message.strip()
        and "sample(s)" not in message
    )
    if matrix == "header_only":
        assert "the matrix has no cells" in message
    else:
        for part in (
            "no cell passes QC",
            "of 40 cells, 40 have fewer than 200 detected genes",
            "normalized: true",
            "orientation",
        ):
            assert part in message, part


def test_a_manifest_cannot_make_ingestion_read_outside_its_folder(built_platform, raw):
    secret = raw.parent / "secret.h5ad"
    shutil.copy(raw / "datasets" / "pc9_erlotinib" / "counts.h5ad", secret)
    edit_manifest(raw, "jhu006_gefitinib", matrix="../../../secret.h5ad")
    message = fails_with(built_platform, ["sc_dataset"], "jhu006_gefitinib")
    assert (
        "dataset.yaml" in message
        and "'matrix' '../../../secret.h5ad' leads outside the dataset folder" in message
    )
    secret.unlink()
