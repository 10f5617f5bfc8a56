"""The default method, `ssda_blend`: per repetition the mean P(sensitive) of `ssda_auto`'s network
and the shots alone's (`target_only`), each trained as that method alone would train it; what it
chose is recorded; the choice and the scores never read an evaluation label; same seed, same
everything; and the two networks per repetition survive a save and a load."""

import dataclasses

import numpy as np
import pytest
import torch

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import repetition_split
from ssda_model.model import SSDAModel
from ssda_model.train.blend import BLEND_MEMBERS, split_state
from ssda_model.train.trainer import train_in_ensembles
from tests.helpers import FAST, three_repetitions

BLEND = FAST.replace(method="ssda_blend", repetitions=2, device="cpu", precision="fp32")


def test_it_is_the_default():
    assert SSDAConfig().method == "ssda_blend"


@pytest.fixture(scope="module")
def fitted(small_pair):
    """The blend and its two members fitted alone, on the same seeds."""
    source, target = small_pair
    return {m: SSDAModel.fit(source, target, BLEND.replace(method=m)) for m in ("ssda_blend", *BLEND_MEMBERS)}


def test_each_repetition_scores_the_mean_of_its_members_trained_as_alone(small_pair, fitted):
    """Member by member the blend's weights are those of `ssda_auto` and `target_only` fitted
    alone, so its score is the mean of theirs, per cell; each member's AUC and `ssda_auto`'s
    choice are recorded beside the blend's own."""
    _, target = small_pair
    blend, auto, alone = (fitted[m] for m in ("ssda_blend", *BLEND_MEMBERS))
    for joined, a, t in zip(blend.state_dicts, auto.state_dicts, alone.state_dicts, strict=True):
        members = split_state("ssda_blend", joined)
        for ours, theirs in zip(members, (a, t), strict=True):
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    scores = {m: model.predict(target).obs["ssda_score"].to_numpy() for m, model in fitted.items()}
    assert np.allclose(scores["ssda_blend"], (scores["ssda_auto"] + scores["target_only"]) / 2, atol=1e-6)
    metrics = blend.metrics
    for row, a, t in zip(
        metrics["repetitions"], auto.metrics["repetitions"], alone.metrics["repetitions"], strict=True
    ):
        assert row["member_auc"] == pytest.approx({"ssda_auto": a["auc"], "target_only": t["auc"]})
        assert (row["bulk_weight"], row["best_epoch"]) == (a["bulk_weight"], a["best_epoch"])
    assert metrics["mean_member_auc"] == pytest.approx(
        {"ssda_auto": auto.metrics["mean_auc"], "target_only": alone.metrics["mean_auc"]}
    )
    assert metrics["mean_bulk_weight"] == auto.metrics["mean_bulk_weight"]


def test_both_members_keep_their_epoch_records_under_their_own_names(fitted):
    record = fitted["ssda_blend"].histories[0][0]
    assert {"epoch", "val_auc", "loss_mme", "target_only.val_auc", "target_only.loss_cls"} <= record.keys()
    assert record["val_auc"] == fitted["ssda_auto"].histories[0][0]["val_auc"]
    assert record["target_only.val_auc"] == fitted["target_only"].histories[0][0]["val_auc"]


def test_save_and_load_keep_both_networks_of_every_repetition(small_pair, fitted, tmp_path):
    _, target = small_pair
    blend = fitted["ssda_blend"]
    loaded = SSDAModel.load(blend.save(tmp_path / "model"))
    assert len(loaded.networks("cpu")) == 2 * BLEND.repetitions
    assert sorted(p.name for p in (tmp_path / "model" / "weights").iterdir()) == [
        "repetition_01.pt",
        "repetition_02.pt",
    ]
    before, after = blend.predict(target), loaded.predict(target)
    assert np.array_equal(before.obs["ssda_score"], after.obs["ssda_score"])
    assert np.array_equal(before.obs["ssda_score_std"], after.obs["ssda_score_std"])
    assert after.uns["ssda"]["method"] == "ssda_blend" and after.uns["ssda"]["n_models"] == 2


def test_the_std_is_over_repetitions_of_the_members_mean(small_pair, fitted):
    _, target = small_pair
    blend = fitted["ssda_blend"]
    x, _ = blend.align(target)
    nets = blend.networks("cpu")
    with torch.no_grad():
        p = np.stack([net.sensitivity(torch.as_tensor(x, dtype=torch.float32)).numpy() for net in nets])
    per_repetition = p.reshape(BLEND.repetitions, 2, -1).mean(1)
    mean, std, _ = blend.score(x, "cpu")
    assert np.allclose(mean, per_repetition.mean(0), atol=1e-6)
    assert np.allclose(std, per_repetition.std(0), atol=1e-6)


def test_under_the_strict_protocol_no_evaluation_label_reaches_the_weights(small_pair):
    """Every target label but the shots' inverted: under the strict protocol the blend trains and
    chooses on the bulk and the shots alone, so every weight, every choice and every score of a
    cell is the same; only the AUCs on the (poisoned) evaluation cells differ."""
    data, _ = three_repetitions(small_pair, torch.device("cpu"))
    splits = [
        repetition_split(data.source_y.numpy(), data.target_y, 3, "strict", 0.2, seed=r) for r in (1, 2, 3)
    ]
    shots = np.concatenate([split.shots for split in splits])
    others = np.setdiff1d(np.flatnonzero(~np.isnan(data.target_y)), shots)
    poisoned_y = data.target_y.copy()
    poisoned_y[others] = 1 - data.target_y[others]
    poisoned = dataclasses.replace(data, target_y=poisoned_y)
    config = BLEND.replace(protocol="strict", epochs=3)
    honest = train_in_ensembles(data, splits, [1, 2, 3], config)
    misled = train_in_ensembles(poisoned, splits, [1, 2, 3], config)
    for h, m in zip(honest, misled, strict=True):
        assert (h.bulk_trust, h.best_epoch, h.selection) == (m.bulk_trust, m.best_epoch, m.selection)
        assert h.state_dict.keys() == m.state_dict.keys()
        assert all(torch.equal(h.state_dict[k], m.state_dict[k]) for k in h.state_dict)
    assert any(h.bulk_trust is not None and h.bulk_trust.weight > 0 for h in honest)


def test_the_same_seed_gives_the_same_choice_and_scores(small_pair):
    source, target = small_pair
    first, second = (SSDAModel.fit(source, target, BLEND) for _ in range(2))
    assert first.metrics["repetitions"] == second.metrics["repetitions"]  # choice, AUCs, epochs
    assert np.array_equal(first.predict(target).obs["ssda_score"], second.predict(target).obs["ssda_score"])
