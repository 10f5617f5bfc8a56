import numpy as np

from ssda_model.data.splits import repetition_split, stratified_split


def labels(n_pos=40, n_neg=60):
    return np.array([1.0] * n_pos + [0.0] * n_neg)


def test_stratified_split_keeps_class_shares():
    y = labels()
    train, val = stratified_split(y, np.arange(100), 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert (y[val] == 1).sum() == 8 and (y[val] == 0).sum() == 12


def test_repetition_split_depends_only_on_its_seed():
    s, t = labels(), labels(30, 30)
    a = repetition_split(s, t, 3, "paper", 0.2, seed=7)
    repetition_split(s, t, 3, "paper", 0.2, seed=6)
    b = repetition_split(s, t, 3, "paper", 0.2, seed=7)
    c = repetition_split(s, t, 3, "paper", 0.2, seed=8)
    assert np.array_equal(a.shots, b.shots) and np.array_equal(a.source_val, b.source_val)
    assert not np.array_equal(a.shots, c.shots)


def test_shots_come_from_target_train_and_are_never_evaluated():
    s, t = labels(), labels(30, 30)
    split = repetition_split(s, t, 3, "paper", 0.2, seed=1)
    assert (t[split.shots] == 1).sum() == 3 and (t[split.shots] == 0).sum() == 3
    assert len(np.intersect1d(split.shots, split.target_select)) == 0
    assert len(np.intersect1d(split.shots, split.target_eval)) == 0
    assert len(np.intersect1d(split.shots, split.unlabeled)) == 0
    assert len(split.target_eval) == 54 and len(split.target_select) == 12


def test_strict_protocol_uses_no_target_labels_for_selection_and_same_shots():
    s, t = labels(), labels(30, 30)
    paper = repetition_split(s, t, 3, "paper", 0.2, seed=4)
    strict = repetition_split(s, t, 3, "strict", 0.2, seed=4)
    assert len(strict.target_select) == 0
    assert np.array_equal(paper.shots, strict.shots)


def test_unlabeled_target_cells_are_never_shots_or_evaluated():
    s = labels()
    t = np.concatenate([labels(10, 10), np.full(30, np.nan)])
    split = repetition_split(s, t, 2, "paper", 0.2, seed=1)
    assert set(np.flatnonzero(np.isnan(t))) <= set(split.unlabeled)
    assert not np.isnan(t[split.target_eval]).any()


def test_shots_all_uses_every_labeled_cell():
    s = labels()
    t = np.concatenate([labels(2, 3), np.full(30, np.nan)])
    split = repetition_split(s, t, "all", "paper", 0.2, seed=1)
    assert len(split.shots) == 5 and len(split.target_eval) == 0 and len(split.unlabeled) == 30
