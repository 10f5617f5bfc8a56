"""Streaming predict gives the in-memory scores, for dense and sparse input, across chunk boundaries."""

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from ssda_model.model import SSDAModel
from ssda_model.streaming import predict_file
from tests.helpers import FAST

pytestmark = pytest.mark.numerics  # rerun with oneDNN and ATen capped at AVX2 (Makefile: test)


@pytest.fixture(scope="module")
def model(small_pair):
    return SSDAModel.fit(*small_pair, FAST)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_streaming_equals_in_memory(tmp_path, model, small_pair, layout):
    cells = small_pair[1].copy()
    cells = cells[:, list(reversed(cells.var_names))[:-5]].copy()  # other gene order, a few genes missing
    if layout == "sparse":
        cells.X = sparse.csr_matrix(cells.X)
    cells.write_h5ad(tmp_path / "cells.h5ad")
    expected = model.predict(cells)
    counts = predict_file(
        model, tmp_path / "cells.h5ad", tmp_path / "scored.h5ad", chunk_size=7
    )  # 150 = 21×7 + 3
    scored = ad.read_h5ad(tmp_path / "scored.h5ad")
    np.testing.assert_allclose(scored.obs["ssda_score"], expected.obs["ssda_score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        scored.obs["ssda_score_std"], expected.obs["ssda_score_std"], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(scored.obsm["X_ssda"], expected.obsm["X_ssda"], rtol=1e-4, atol=1e-5)
    assert (scored.obs["ssda_label"].astype(str) == expected.obs["ssda_label"].astype(str)).all()
    assert list(scored.uns["ssda"]["genes_missing"]) == expected.uns["ssda"]["genes_missing"]
    assert counts["cells"] == 150 and counts["genes_missing"] == 5
    assert (scored.X != cells.X).sum() == 0 if layout == "sparse" else np.array_equal(scored.X, cells.X)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
