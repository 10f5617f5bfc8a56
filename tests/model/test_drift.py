"""The bootstrap interval of % resistant: the cells' resamples as binomial draws, same distribution,
memory that does not grow with the cells."""

import tracemalloc

import numpy as np

from ssda_model.analysis.drift import percent_resistant_ci


def test_interval_matches_resampling_the_cells():
    rng = np.random.default_rng(0)
    scores = rng.random(2_000) ** 1.5  # about 35 % below 0.5
    pct, low, high = percent_resistant_ci(scores, np.random.default_rng(1), n_boot=4_000)
    resistant = scores < 0.5
    cells = rng.choice(resistant, size=(4_000, len(resistant))).mean(axis=1) * 100
    assert pct == resistant.mean() * 100
    assert abs(low - np.percentile(cells, 2.5)) < 0.3 and abs(high - np.percentile(cells, 97.5)) < 0.3
    assert low < pct < high


def test_interval_is_seeded():
    scores = np.random.default_rng(0).random(500)
    assert percent_resistant_ci(scores, np.random.default_rng(3)) == percent_resistant_ci(
        scores, np.random.default_rng(3)
    )


def test_a_million_cells_need_no_more_than_their_scores():
    scores = np.random.default_rng(0).random(1_000_000)
    tracemalloc.start()
    try:
        percent_resistant_ci(scores, np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < scores.nbytes  # resampling the cells held 1,000 × 10^6 draws
