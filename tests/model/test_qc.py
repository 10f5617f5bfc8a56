"""The block-by-block QC equals scanpy's on the whole matrix, whatever the block size."""

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_model.data.qc import StreamingQC, quality_control


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> ad.AnnData:
    """The demo's bortezomib time course: 400 cells, empty droplets, high-mito cells, rare genes."""
    raw = tmp_path_factory.mktemp("raw")
    write_demo_raw(raw)
    return ad.read_h5ad(raw / "datasets" / "mcf7_bortezomib" / "counts.h5ad")


def scanpy_qc(adata: ad.AnnData) -> ad.AnnData:
    """The paper's QC as scanpy runs it on the whole matrix (what ingestion did before blocks)."""
    adata = adata[np.asarray((adata.X > 0).sum(axis=1)).ravel() >= 200].copy()
    adata = adata[:, np.asarray((adata.X > 0).sum(axis=0)).ravel() >= 3].copy()
    adata.var["mt"] = adata.var_names.str.startswith(("MT-", "mt-"))
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    adata = adata[adata.obs["pct_counts_mt"].to_numpy() <= 5.0].copy()
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.mark.parametrize("block", [37, 10_000])
def test_blocks_equal_scanpys_qc_on_the_whole_matrix(course, block):
    expected = scanpy_qc(course)
    qc = StreamingQC(course, "counts.h5ad", block)
    blocks = list(qc.blocks())
    assert list(qc.obs.index) == list(expected.obs_names) and list(qc.var.index) == list(expected.var_names)
    values = sparse.vstack([b.values for b in blocks]).toarray()
    counts = sparse.vstack([b.counts for b in blocks]).toarray()
    np.testing.assert_allclose(values, expected.X.toarray(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(counts, expected.layers["counts"].toarray())
    for column in qc.obs.columns:
        np.testing.assert_allclose(qc.obs[column], expected.obs[column], rtol=1e-5, err_msg=column)
    for column in qc.var.columns:
        np.testing.assert_allclose(qc.var[column], expected.var[column], rtol=1e-5, err_msg=column)
    assert qc.report == {
        "cells_in": 400,
        "genes_in": 2000,
        "cells_removed_min_genes": 6,
        "genes_removed_min_cells": 8,
        "cells_removed_mito": 5,
        "cells_out": 389,
        "genes_out": 1992,
    }


def test_the_in_memory_form_keeps_the_input_obs_and_the_log1p_note(course):
    adata, report = quality_control(course, "counts.h5ad")
    assert adata.shape == (389, 1992) and report["cells_out"] == 389
    assert list(adata.obs["time"]) == list(course.obs.loc[adata.obs_names, "time"])
    assert adata.uns["log1p"] == {"base": None}
