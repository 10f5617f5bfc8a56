"""scverse input options of a dataset.yaml: where an .h5ad holds its raw counts (`layer:`, a layer
or .raw), counts checked to be whole numbers, and QC thresholds per dataset (`qc:`)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import sparse

from ssda_assets.raw.ingest import ingest
from ssda_assets.raw.manifest import read_manifest
from ssda_model.data.qc import QCThresholds
from ssda_model.errors import SSDAInputError


def counts(cells: int = 60, genes: int = 400, seed: int = 0) -> sparse.csr_matrix:
    """Poisson counts: about 340 detected genes per cell, a few cells below 300."""
    rng = np.random.default_rng(seed)
    values = rng.poisson(2.0, (cells, genes)).astype(np.float32)
    values[:5, 100:] = 0  # five cells with 100 genes or fewer
    return sparse.csr_matrix(values)


def lognorm(raw: sparse.csr_matrix) -> sparse.csr_matrix:
    scaled = sparse.diags(1e4 / np.asarray(raw.sum(axis=1)).ravel()) @ raw
    scaled.data = np.log1p(scaled.data)
    return sparse.csr_matrix(scaled, dtype=np.float32)


def dataset(tmp_path, adata: ad.AnnData, **manifest):
    folder = tmp_path / "ds"
    folder.mkdir()
    adata.write_h5ad(folder / "counts.h5ad")
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump({"drugs": ["X"], "matrix": "counts.h5ad", **manifest})
    )
    return read_manifest(folder)


def cells(raw: sparse.csr_matrix, genes: int = 400) -> ad.AnnData:
    return ad.AnnData(
        lognorm(raw),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(raw.shape[0])]),
        var=pd.DataFrame(index=[f"G{i}" for i in range(genes)]),
    )


@pytest.mark.parametrize("layer", ["counts", ".raw"])
def test_counts_read_from_a_layer_or_raw_equal_counts_in_x(tmp_path, layer):
    """The usual scanpy file: normalised X, counts in layers["counts"] or in .raw."""
    raw = counts()
    adata = cells(raw)
    if layer == ".raw":
        adata.raw = ad.AnnData(raw, obs=adata.obs, var=adata.var)
    else:
        adata.layers["counts"] = raw
    manifest = dataset(tmp_path, adata, layer=layer)
    done = ingest(manifest, tmp_path / "out.h5ad")
    plain = ad.AnnData(raw, obs=adata.obs, var=adata.var)
    (tmp_path / "plain").mkdir()
    plain_manifest = dataset(tmp_path / "plain", plain)
    expected = ingest(plain_manifest, tmp_path / "plain.h5ad")
    assert done.report["cells_out"] == expected.report["cells_out"] == 55
    out, reference = ad.read_h5ad(tmp_path / "out.h5ad"), ad.read_h5ad(tmp_path / "plain.h5ad")
    assert (out.X != reference.X).nnz == 0 and f"counts from {layer}" in done.report["qc"]


def test_normalised_values_declared_raw_are_refused_with_what_to_do(tmp_path):
    manifest = dataset(tmp_path, cells(counts()))
    with pytest.raises(SSDAInputError, match=r"not whole numbers.*'layer'.*normalized: true.*integer_counts"):
        ingest(manifest, tmp_path / "out.h5ad")


def test_a_missing_layer_names_the_layers_there(tmp_path):
    adata = cells(counts())
    adata.layers["spliced"] = counts()
    manifest = dataset(tmp_path, adata, layer="counts")
    with pytest.raises(SSDAInputError, match=r"no layer 'counts' \(layers: spliced\)"):
        ingest(manifest, tmp_path / "out.h5ad")


def test_corrected_counts_pass_when_declared(tmp_path):
    raw = counts()
    raw.data = raw.data * np.float32(0.9)  # ambient-corrected: fractional
    adata = ad.AnnData(raw, obs=pd.DataFrame(index=[f"c{i}" for i in range(60)]))
    with pytest.raises(SSDAInputError, match="not whole numbers"):
        ingest(dataset(tmp_path, adata), tmp_path / "out.h5ad")
    (tmp_path / "b").mkdir()
    manifest = dataset(tmp_path / "b", adata, qc={"integer_counts": False})
    assert ingest(manifest, tmp_path / "out.h5ad").report["cells_out"] == 55


def test_qc_thresholds_per_dataset(tmp_path):
    adata = ad.AnnData(counts(), obs=pd.DataFrame(index=[f"c{i}" for i in range(60)]))
    manifest = dataset(tmp_path, adata, qc={"min_genes": 50, "max_mito_pct": 10})
    assert manifest.qc == QCThresholds(min_genes=50, max_mito_pct=10)
    done = ingest(manifest, tmp_path / "out.h5ad")
    assert done.report["cells_out"] == 60  # the five sparse cells pass a lower bar
    assert "dataset.yaml QC: min 50 genes/cell" in done.report["qc"]


def test_option_problems_reported_together(tmp_path):
    adata = ad.AnnData(counts(), obs=pd.DataFrame(index=[f"c{i}" for i in range(60)]))
    with pytest.raises(SSDAInputError) as error:
        dataset(
            tmp_path,
            adata,
            normalized=True,
            layer="counts",
            qc={"min_genes": -1, "max_mito_pct": 200, "x": 1},
        )
    message = str(error.value)
    for part in (
        "'layer' names where",
        "'qc' applies to raw counts",
        "'qc.min_genes'",
        "'qc.max_mito_pct'",
        "unknown keys x",
    ):
        assert part in message, part
