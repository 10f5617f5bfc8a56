"""The method on the built-in synthetic pair: adaptation helps, runs repeat exactly, models travel."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ssda_model.config import METHODS, SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel
from ssda_model.train.device import cpu_has_bf16
from ssda_model.train.loop import deterministic_algorithms
from tests.helpers import FAST


@pytest.fixture(scope="module")
def benchmark_pair():
    return synthetic_pair(seed=0)


BENCHMARK = SSDAConfig(epochs=30, repetitions=3)


@pytest.fixture(scope="module")
def default_metrics(benchmark_pair):
    """The defaults (method, precision) on the benchmark pair: trained once for the tests below."""
    return SSDAModel.fit(*benchmark_pair, BENCHMARK).metrics


@pytest.mark.slow
def test_ssda_and_the_default_beat_source_only_and_target_only(benchmark_pair, default_metrics):
    source, target = benchmark_pair
    assert BENCHMARK.method == "ssda_blend"
    runs = {
        m: SSDAModel.fit(source, target, BENCHMARK.replace(method=m)).metrics
        for m in ("ssda", "source_only", "target_only")
    }
    runs["ssda_blend"] = default_metrics
    auc = {m: metrics["mean_auc"] for m, metrics in runs.items()}
    per_rep = {m: [r["auc"] for r in metrics["repetitions"]] for m, metrics in runs.items()}
    for method in ("ssda", "ssda_blend"):
        for baseline in ("source_only", "target_only"):
            assert auc[method] > auc[baseline] + 0.025, auc
            # paired: same split and shots per repetition, so the method wins most of them
            assert sum(a > b for a, b in zip(per_rep[method], per_rep[baseline], strict=True)) >= 2, per_rep


@pytest.mark.slow
def test_auto_and_bf16_precision_keep_the_fp32_auc(benchmark_pair, default_metrics):
    """The default precision is bf16 where the CPU has bf16 units, fp32 elsewhere; bf16 stays
    within 0.01 AUC of fp32. Without the units bf16 is emulated (~1,000x slower matmuls): not
    trained there."""
    assert default_metrics["precision"] == ("bf16" if cpu_has_bf16() else "fp32")
    if default_metrics["precision"] == "fp32":
        pytest.skip("no bf16 units here (or oneDNN capped below them): auto is fp32, bf16 emulated")
    fp32 = SSDAModel.fit(*benchmark_pair, BENCHMARK.replace(precision="fp32")).metrics
    assert fp32["precision"] == "fp32"
    auto = default_metrics["mean_auc"]
    assert abs(auto - fp32["mean_auc"]) < 0.01, (fp32["mean_auc"], auto)


def test_synthetic_pair_is_not_trivially_separable(benchmark_pair):
    """No single gene of the cells separates the classes: the task needs a model."""
    from sklearn.metrics import roc_auc_score

    _, target = benchmark_pair
    y = target.obs["response"].to_numpy()
    best = max(max(a, 1 - a) for a in (roc_auc_score(y, target.X[:, j]) for j in range(target.n_vars)))
    assert best < 0.82
    assert (target.layers["counts"] == 0).mean() > 0.2  # sparse counts, as in scRNA-seq


@pytest.mark.numerics
def test_same_seed_same_metrics_and_scores(small_pair):
    """Exact in any precision: one process runs the same kernels twice."""
    source, target = small_pair
    first = SSDAModel.fit(source, target, FAST)
    second = SSDAModel.fit(source, target, FAST)
    assert first.metrics["repetitions"] == second.metrics["repetitions"]
    a, b = first.predict(target), second.predict(target)
    assert np.array_equal(a.obs["ssda_score"], b.obs["ssda_score"])
    assert np.array_equal(a.obsm["X_ssda"], b.obsm["X_ssda"])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_reports_pooled_metrics(small_pair, method):
    source, target = small_pair
    metrics = SSDAModel.fit(source, target, FAST.replace(method=method)).metrics
    assert metrics["method"] == method
    rows = metrics["repetitions"]
    assert [r["seed"] for r in rows] == [1, 2]
    assert all(0.0 <= r["auc"] <= 1.0 and 1 <= r["best_epoch"] <= FAST.epochs for r in rows)
    assert all(r["n_eval"] == target.n_obs - 6 for r in rows)  # paper protocol: all cells but the shots
    assert metrics["mean_auc"] == pytest.approx(np.mean([r["auc"] for r in rows]))


def test_method_switches_change_the_losses(small_pair):
    source, target = small_pair
    losses = {}
    for method in ("ssda", "ssda_no_adv", "ssda_no_mme", "source_only"):
        history = SSDAModel.fit(source, target, FAST.replace(method=method, repetitions=1)).histories[0]
        losses[method] = {k: sum(e[k] for e in history) for k in ("loss_adv", "loss_mme")}
    assert losses["ssda"]["loss_adv"] > 0 and losses["ssda"]["loss_mme"] != 0
    assert losses["ssda_no_adv"]["loss_adv"] == 0 and losses["ssda_no_adv"]["loss_mme"] != 0
    assert losses["ssda_no_mme"]["loss_mme"] == 0 and losses["ssda_no_mme"]["loss_adv"] > 0
    assert losses["source_only"] == {"loss_adv": 0, "loss_mme": 0}


def test_strict_protocol_selects_on_source_validation(small_pair):
    """No target label chooses an epoch: the bulk's validation labels do (`ssda`), or, for the
    default, they do where it scores them above chance and the last epoch is kept elsewhere."""
    source, target = small_pair
    metrics = SSDAModel.fit(source, target, FAST.replace(protocol="strict")).metrics
    assert metrics["protocol"] == "strict" and metrics["method"] == "ssda_blend"
    for row in metrics["repetitions"]:
        assert row["selection"] in {"source_val", "last_epoch"}
        assert row["selection"] == "source_val" or row["best_epoch"] == FAST.epochs
    paper = SSDAModel.fit(source, target, FAST.replace(protocol="strict", method="ssda")).metrics
    assert {r["selection"] for r in paper["repetitions"]} == {"source_val"}


def test_shots_all_reports_source_validation_and_still_predicts(small_pair):
    source, target = small_pair
    target = target.copy()
    labels = target.obs["response"].astype(float).to_numpy()
    labels[8:] = np.nan  # a handful of labeled cells, the rest unlabeled
    target.obs["response"] = labels
    model = SSDAModel.fit(source, target, FAST.replace(shots="all"))
    assert model.metrics["evaluation"] == "source_validation" and "note" in model.metrics
    assert all(r["n_shots"] == 8 and r["n_eval"] < source.n_obs for r in model.metrics["repetitions"])
    assert model.predict(target).obs["ssda_score"].between(0, 1).all()


def test_saved_model_loads_and_scores_identically(tmp_path, small_pair):
    source, target = small_pair
    model = SSDAModel.fit(source, target, FAST)
    model.save(tmp_path / "model")
    loaded = SSDAModel.load(tmp_path / "model")
    assert loaded.genes == model.genes and loaded.config == model.config
    assert (
        json.loads((tmp_path / "model" / "metrics.json").read_text())["mean_auc"] == model.metrics["mean_auc"]
    )
    np.testing.assert_array_equal(
        loaded.predict(target).obs["ssda_score"], model.predict(target).obs["ssda_score"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_predict_fills_missing_genes_and_reports_them(small_pair):
    source, target = small_pair
    model = SSDAModel.fit(source, target, FAST.replace(repetitions=1))
    dropped = model.genes[:10]
    scored = model.predict(target[:, [g for g in target.var_names if g not in dropped]].copy())
    assert sorted(scored.uns["ssda"]["genes_missing"]) == sorted(dropped)
    assert len(scored.uns["ssda"]["genes_used"]) == len(model.genes) - 10
    assert set(scored.obs["ssda_label"]) <= {"sensitive", "resistant"}
    assert scored.obsm["X_ssda"].shape == (target.n_obs, 8)


def test_hvg_and_gene_list_restrict_the_input(tmp_path, small_pair):
    source, target = small_pair
    listed = list(target.var_names[:90])
    (tmp_path / "genes.txt").write_text("# prior genes\n" + "\n".join(listed) + "\n")
    model = SSDAModel.fit(
        source, target, FAST.replace(repetitions=1), n_top_genes=60, gene_list=tmp_path / "genes.txt"
    )
    assert len(model.genes) == 60 and set(model.genes) <= set(listed)


@pytest.mark.parametrize("warn_only", [False, True])
def test_training_leaves_a_callers_deterministic_mode_as_it_found_it(warn_only):
    gpu = torch.device("cuda")  # the flags are set for a GPU; setting them needs none present
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    try:
        with deterministic_algorithms(gpu):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
    finally:
        torch.use_deterministic_algorithms(False)
    with deterministic_algorithms(gpu):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


def test_training_on_the_cpu_leaves_the_flags_and_does_not_import_inductor():
    """Setting the flag imports TorchInductor, about 1 s of every fit's start-up; the CPU needs neither."""
    code = (
        "import sys, torch\n"
        "from ssda_model.train.loop import deterministic_algorithms\n"
        "with deterministic_algorithms(torch.device('cpu')):\n"
        "    assert not torch.are_deterministic_algorithms_enabled()\n"
        "print('torch._inductor' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
