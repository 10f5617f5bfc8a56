"""Stratified samples for the analyses that cannot take every cell: seeded, proportional, complete."""

import numpy as np

from ssda_model.analysis.sampling import strata_of, stratified_sample


def test_small_inputs_are_taken_whole():
    assert list(stratified_sample(np.array(["a", "b", "a"]), 10)) == [0, 1, 2]
    assert len(stratified_sample(np.array(["a"] * 50), 0)) == 50  # 0: every cell


def test_the_sample_keeps_each_strata_share_and_every_stratum():
    strata = np.array(["big"] * 9_000 + ["mid"] * 990 + ["rare"] * 10)
    rows = stratified_sample(strata, 1_000, seed=4)
    assert len(rows) == 1_000 and len(set(rows)) == 1_000 and np.all(np.diff(rows) > 0)
    picked = dict(zip(*np.unique(strata[rows], return_counts=True), strict=True))
    assert picked == {"big": 900, "mid": 99, "rare": 1}


def test_the_same_seed_gives_the_same_sample():
    strata = strata_of(np.repeat([0.0, 1.0, np.nan], 2_000), np.tile(["t0", "t1"], 3_000))
    assert len(set(strata)) == 6
    first, again = stratified_sample(strata, 500, seed=1), stratified_sample(strata, 500, seed=1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, stratified_sample(strata, 500, seed=2))
