"""The registered pyfunc reads a frame's genes as the native model reads an AnnData's: any column
order, extra columns ignored, absent genes at their training mean (more than half absent refused,
naming them), Entrez or Ensembl IDs mapped to the symbols the model was trained on."""

import anndata as ad
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from ssda_model.data.gene_ids import human_gene_table
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel
from tests.helpers import FAST
from tests.platform_helpers import platform_store, register

NAME = "ssda-test-pyfunc"


def named_genes(n: int) -> pd.DataFrame:
    """`n` official human symbols, each with one Entrez and one Ensembl ID that name it alone."""
    table = human_gene_table()
    ensembl = {symbols[0]: gene for gene, symbols in table.ensembl.items() if len(symbols) == 1}
    entrez = {symbol: number for number, symbol in table.entrez.items()}
    once = pd.Series(list(ensembl)).value_counts()
    rows = [
        (s, entrez[s], ensembl[s]) for s in sorted(ensembl) if s in entrez and once[s] == 1 and s.isalnum()
    ]
    return pd.DataFrame(rows[:n], columns=["symbol", "entrez", "ensembl"])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The pyfunc of a model trained on real symbols, logged and registered as `trained_model`
    does it and loaded back from the registry; the native model; the cells as a frame; the IDs."""
    genes = named_genes(300)
    source, target = synthetic_pair(n_source=120, n_cells=150, n_genes=300, seed=1)
    source.var_names, target.var_names = genes["symbol"].to_list(), genes["symbol"].to_list()
    native = SSDAModel.fit(source, target, FAST, progress=False)
    with platform_store(tmp_path_factory.mktemp("registry")) as tracking:
        register(tracking, native, NAME, target)  # leaves MLflow pointed at this store
        pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    assert native.genes == genes["symbol"].to_list()
    return pyfunc, native, target.to_df(), genes


def native_scores(native: SSDAModel, frame: pd.DataFrame) -> np.ndarray:
    cells = ad.AnnData(X=frame.to_numpy(np.float32), var=pd.DataFrame(index=frame.columns))
    return native.predict(cells, device="cpu").obs["ssda_score"].to_numpy()


def scores(pyfunc, frame: pd.DataFrame) -> np.ndarray:
    return pyfunc.predict(frame)["ssda_score"].to_numpy()


def test_any_column_order_and_extra_columns_score_the_same(served):
    pyfunc, native, cells, _ = served
    expected = native_scores(native, cells)
    # the same values reach the same kernels: equal, not close
    np.testing.assert_array_equal(scores(pyfunc, cells), expected)
    shuffled = cells[list(np.random.default_rng(0).permutation(cells.columns))]
    np.testing.assert_array_equal(scores(pyfunc, shuffled), expected)
    extra = cells.assign(NOT_A_GENE=1.0, n_counts=2.0, **{"ENSG99999999999": 3.0, "12345678": 4.0})
    np.testing.assert_array_equal(scores(pyfunc, extra[["n_counts", *cells.columns, "NOT_A_GENE"]]), expected)


@pytest.mark.parametrize("id_type", ["ensembl", "entrez"])
def test_gene_ids_as_columns_score_like_symbols(served, id_type):
    pyfunc, native, cells, genes = served
    rename = dict(zip(genes["symbol"], genes[id_type], strict=True))
    if id_type == "ensembl":  # as GENCODE writes them: with a version suffix
        rename = {s: f"{e}.7" for s, e in rename.items()}
    by_id = cells.rename(columns=rename).assign(n_counts=1.0)
    assert set(by_id.columns).isdisjoint(cells.columns)
    np.testing.assert_array_equal(scores(pyfunc, by_id), native_scores(native, cells))


def test_fewer_than_half_absent_are_set_to_their_training_mean(served):
    pyfunc, native, cells, _ = served
    absent = list(cells.columns[::3])  # 100 of 300
    expected = native_scores(native, cells.drop(columns=absent))
    np.testing.assert_array_equal(scores(pyfunc, cells.drop(columns=absent)), expected)
    at_mean = cells.copy()
    means = native.target_scaler.mean[[native.genes.index(g) for g in absent]]
    at_mean[absent] = np.broadcast_to(means, (len(cells), len(absent)))
    # the mean written into a frame and read back: the same float32 values, so z = 0 either way
    np.testing.assert_allclose(native_scores(native, at_mean), expected, rtol=0, atol=1e-6)


def test_more_than_half_absent_is_one_line_naming_them(served):
    pyfunc, native, cells, _ = served
    kept = cells.iloc[:, 151:]  # 149 of 300
    with pytest.raises(MlflowException) as raised:
        pyfunc.predict(kept)
    message = raised.value.message
    assert "\n" not in message, message
    first = ", ".join([g for g in native.genes if g not in kept.columns][:5])
    assert f"pyfunc input: lacks 151 of the model's 300 genes ({first}, …)" in message, message
    assert "at least half are needed" in message
