"""Readers of the official formats on small fixtures written here: GDSC txt/zip/csv/xlsx, 10x, tables,
SCAD."""

import gzip
import zipfile

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import io, sparse

from ssda_model.data.gdsc import binarise_ic50, normalise_drug_name, read_gdsc_expression, read_gdsc_response
from ssda_model.data.qc import check_counts, quality_control
from ssda_model.data.readers import H5adRows, read_scad_tsv
from ssda_model.data.single_cell import read_10x, read_count_table
from ssda_model.errors import SSDAInputError

RMA = (
    "GENE_SYMBOLS\tGENE_title\tDATA.906826\tDATA.687983\n"
    "TSPAN6\ttetraspanin 6\t7.6\t7.1\n"
    "\tno symbol\t3.0\t3.2\n"
    "TNMD\ttenomodulin\t2.9\t2.8\n"
    "TSPAN6\tsecond probe\t7.2\t6.9\n"
)


def test_gdsc_expression_plain_and_zipped(tmp_path):
    plain = tmp_path / "Cell_line_RMA_proc_basalExp.txt"
    plain.write_text(RMA)
    with zipfile.ZipFile(tmp_path / "Cell_line_RMA_proc_basalExp.txt.zip", "w") as archive:
        archive.write(plain, plain.name)
    for path in (plain, tmp_path / "Cell_line_RMA_proc_basalExp.txt.zip"):
        matrix, report = read_gdsc_expression(path)
        assert list(matrix.index) == [687983, 906826]
        assert list(matrix.columns) == ["TSPAN6", "TNMD"]
        assert matrix.loc[906826, "TSPAN6"] == pytest.approx(7.4)  # two probes averaged
        assert report["genes_dropped_empty_symbol"] == 1 and report["rows_with_duplicated_symbol"] == 2


def test_gdsc_expression_rejects_other_tables(tmp_path):
    path = tmp_path / "expr.txt"
    path.write_text("gene\tA\nX\t1\n")
    with pytest.raises(SSDAInputError, match="GENE_SYMBOLS"):
        read_gdsc_expression(path)


RESPONSE = pd.DataFrame(
    {
        "DATASET": ["GDSC2"] * 3,
        "NLME_RESULT_ID": 343,
        "COSMIC_ID": [906826, 687983, 906826],
        "CELL_LINE_NAME": ["PFSK-1", "A673", "PFSK-1"],
        "TCGA_DESC": ["MB", "UNCLASSIFIED", "MB"],
        "DRUG_ID": [1036, 1036, 1010],
        "DRUG_NAME": ["PLX-4720", "PLX-4720", "Gefitinib"],
        "PUTATIVE_TARGET": "BRAF",
        "PATHWAY_NAME": "ERK MAPK signaling",
        "LN_IC50": [2.1, -0.5, 3.3],
        "AUC": [0.9, 0.6, 0.95],
        "Z_SCORE": [0.1, -1.2, 0.4],
    }
)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_gdsc_response_csv_and_xlsx(tmp_path, suffix):
    path = tmp_path / f"GDSC2_fitted_dose_response_27Oct23.{suffix}"
    RESPONSE.to_excel(path, index=False) if suffix == "xlsx" else RESPONSE.to_csv(path, index=False)
    frame = read_gdsc_response(path)
    assert list(frame.columns) == [
        "dataset",
        "cosmic_id",
        "cell_line",
        "tissue",
        "drug_id",
        "drug",
        "ln_ic50",
        "auc",
    ]
    assert frame["cosmic_id"].tolist() == [906826, 687983, 906826]
    assert frame.loc[frame["drug"] == "PLX-4720", "ln_ic50"].tolist() == [2.1, -0.5]


def test_drug_names_match_without_case_or_punctuation():
    assert normalise_drug_name("PLX-4720") == normalise_drug_name("plx4720") == "plx4720"
    assert normalise_drug_name("Nutlin-3a (-)") == "nutlin3a"


def test_binarise_ic50_at_the_mean():
    labels, threshold = binarise_ic50(pd.Series([1.0, 2.0, 3.0, 6.0]))
    assert threshold == 3.0 and labels.tolist() == [1, 1, 0, 0]


def write_10x(folder, counts, genes, barcodes, v3=True):
    folder.mkdir()
    with (
        gzip.open(folder / ("matrix.mtx.gz" if v3 else "matrix.mtx"), "wb")
        if v3
        else open(folder / "matrix.mtx", "wb") as h
    ):
        io.mmwrite(h, sparse.coo_matrix(counts.T), field="integer")
    ids = [f"ENSG{i:05d}" for i in range(len(genes))]
    if v3:
        pd.DataFrame({"id": ids, "name": genes, "t": "Gene Expression"}).to_csv(
            folder / "features.tsv.gz", sep="\t", header=False, index=False, compression="gzip"
        )
        pd.Series(barcodes).to_csv(folder / "barcodes.tsv.gz", header=False, index=False, compression="gzip")
    else:
        pd.DataFrame({"id": ids, "name": genes}).to_csv(
            folder / "genes.tsv", sep="\t", header=False, index=False
        )
        pd.Series(barcodes).to_csv(folder / "barcodes.tsv", header=False, index=False)


@pytest.mark.parametrize("v3", [True, False])
def test_10x_folders_v2_and_v3(tmp_path, v3):
    counts = np.array([[1, 0, 3], [0, 2, 0]])
    write_10x(tmp_path / "m", counts, ["A", "B", "MT-CO1"], ["AAAC-1", "AAAG-1"], v3)
    adata = read_10x(tmp_path / "m")
    assert list(adata.obs_names) == ["AAAC-1", "AAAG-1"] and list(adata.var_names) == ["A", "B", "MT-CO1"]
    assert np.array_equal(adata.X.toarray(), counts)


def test_10x_folder_with_missing_files(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "matrix.mtx").write_text("")
    with pytest.raises(SSDAInputError, match="missing barcodes.tsv"):
        read_10x(tmp_path / "m")


def _random_counts(cells=23, genes=7, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, (cells, genes)) * (rng.random((cells, genes)) < 0.4)
    counts[5] = 0  # a cell without counts, inside a block
    counts[-1] = 0  # and the last cell
    return counts


@pytest.mark.parametrize("v3", [True, False])
def test_10x_streamed_by_cell_equals_the_whole_read(tmp_path, v3):
    """Cell Ranger's order (entries grouped by cell) is streamed a few cells at a time into the
    staging file; the result equals the whole read, names and values."""
    counts = _random_counts()
    genes, barcodes = [f"G{i}" for i in range(7)], [f"C{i}" for i in range(23)]
    write_10x(tmp_path / "m", counts, genes, barcodes, v3)
    grouped = sparse.csc_matrix(counts.T)  # genes × cells, column by column: grouped by cell
    with (
        gzip.open(tmp_path / "m" / "matrix.mtx.gz", "wb")
        if v3
        else open(tmp_path / "m" / "matrix.mtx", "wb") as h
    ):
        io.mmwrite(h, grouped, field="integer")
    whole = read_10x(tmp_path / "m")
    streamed = read_10x(tmp_path / "m", staging=tmp_path / "staged.h5ad", block=4)
    assert sparse.issparse(whole.X) and not sparse.issparse(streamed.X)  # on disk, not in memory
    assert np.array_equal(streamed.X[:].toarray(), counts) and np.array_equal(whole.X.toarray(), counts)
    pd.testing.assert_frame_equal(streamed.obs, whole.obs)
    pd.testing.assert_frame_equal(streamed.var, whole.var)


def test_h5ad_rows_are_appended_with_a_64_bit_indptr(tmp_path):
    """Blocks appended to an .h5ad read back as one matrix, whose indptr can pass 2^31 values."""
    counts = _random_counts()
    out = H5adRows(tmp_path / "rows.h5ad")
    for start in range(0, 23, 10):
        out.append("X", sparse.csr_matrix(counts[start : start + 10], dtype=np.float32))
    out.finish(pd.DataFrame(index=[f"C{i}" for i in range(23)]), pd.DataFrame(index=list("ABCDEFG")))
    with h5py.File(tmp_path / "rows.h5ad") as handle:
        assert handle["X/indptr"].dtype == np.int64 and handle["X/indices"].dtype == np.int32
    assert np.array_equal(ad.read_h5ad(tmp_path / "rows.h5ad").X.toarray(), counts)


def test_10x_not_grouped_by_cell_is_read_whole(tmp_path):
    counts = _random_counts()
    write_10x(tmp_path / "m", counts, [f"G{i}" for i in range(7)], [f"C{i}" for i in range(23)])
    adata = read_10x(tmp_path / "m", staging=tmp_path / "staged.h5ad", block=4)  # gene by gene
    assert np.array_equal(adata.X.toarray(), counts) and not (tmp_path / "staged.h5ad").exists()


def test_truncated_10x_matrix_names_the_file(tmp_path):
    counts = _random_counts()
    write_10x(tmp_path / "m", counts, [f"G{i}" for i in range(7)], [f"C{i}" for i in range(23)], v3=False)
    with open(tmp_path / "m" / "matrix.mtx", "wb") as h:
        io.mmwrite(h, sparse.csc_matrix(counts.T), field="integer")
    lines = (tmp_path / "m" / "matrix.mtx").read_text().splitlines()
    (tmp_path / "m" / "matrix.mtx").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(SSDAInputError, match=r"matrix\.mtx.*declares \d+ entries but holds"):
        read_10x(tmp_path / "m", staging=tmp_path / "staged.h5ad")


def test_cells_by_genes_table_streamed(tmp_path):
    counts = _random_counts()
    table = pd.DataFrame(counts, index=[f"C{i}" for i in range(23)], columns=[f"G{i}" for i in range(7)])
    table.to_csv(tmp_path / "counts.csv")
    streamed = read_count_table(tmp_path / "counts.csv", "cells_by_genes", tmp_path / "staged.h5ad", block=4)
    assert not sparse.issparse(streamed.X) and np.array_equal(streamed.X[:].toarray(), counts)
    assert list(streamed.obs_names) == list(table.index) and list(streamed.var_names) == list(table.columns)


@pytest.mark.parametrize("orientation", ["cells_by_genes", "genes_by_cells"])
def test_count_tables_in_both_orientations(tmp_path, orientation):
    table = pd.DataFrame([[1, 0], [4, 2], [0, 5]], index=["c1", "c2", "c3"], columns=["G1", "G2"])
    (table if orientation == "cells_by_genes" else table.T).to_csv(tmp_path / "counts.tsv", sep="\t")
    adata = read_count_table(tmp_path / "counts.tsv", orientation)
    assert list(adata.obs_names) == ["c1", "c2", "c3"] and list(adata.var_names) == ["G1", "G2"]
    assert adata.X[1, 0] == 4


def test_count_checks(tmp_path):
    table = pd.DataFrame([[1, -1]], index=["c1"], columns=["G1", "G2"])
    table.to_csv(tmp_path / "c.csv")
    with pytest.raises(SSDAInputError, match="non-negative"):
        check_counts(read_count_table(tmp_path / "c.csv", "cells_by_genes"), "c.csv")


def test_scad_tsv_is_read_without_renormalising(tmp_path):
    path = tmp_path / "Target_expr_resp_z.Drug_tp4k.tsv"
    path.write_text("\tresponse\t2\t14\ncellA\t1\t0.5\t-1.2\ncellB\t0\t-0.5\t1.2\n")
    adata = read_scad_tsv(path)
    assert list(adata.var_names) == ["2", "14"] and adata.obs["response"].tolist() == [1, 0]
    assert adata.X[0, 1] == pytest.approx(-1.2)


def test_qc_that_removes_every_cell_says_what_each_rule_removed():
    counts = np.ones((30, 250), dtype=np.float32)  # every cell detects all 250 genes, all mitochondrial
    adata = ad.AnnData(
        sparse.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(30)]),
        var=pd.DataFrame(index=[f"MT-{i}" for i in range(250)]),
    )
    with pytest.raises(SSDAInputError) as error:
        quality_control(adata, "datasets/pc9/counts.csv")
    message = str(error.value)
    assert message.startswith(
        "datasets/pc9/counts.csv: no cell passes QC: of 30 cells, 0 have fewer than 200 detected "
        "genes and 30 more than 5 % mitochondrial counts"
    )
    assert "normalized: true" in message and "\n" not in message
