"""The one place data is split: stratified train/validation splits and few-shot draws, seeded per
repetition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def stratified_split(
    labels: np.ndarray, indices: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (train, val) keeping each class's share; every class with ≥ 2 members
    puts at least one in each part."""
    train, val = [], []
    for cls in (0, 1):
        members = indices[labels[indices] == cls]
        members = members[rng.permutation(len(members))]
        n_val = int(round(val_fraction * len(members)))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def validation_count(n: int, val_fraction: float) -> int:
    """How many of n class members stratified_split puts in validation."""
    n_val = int(round(val_fraction * n))
    return min(max(n_val, 1), n - 1) if n >= 2 else n_val


def draw_shots(labels: np.ndarray, pool: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """`shots` cells per class drawn without replacement from `pool`."""
    chosen = []
    for cls in (0, 1):
        members = pool[labels[pool] == cls]
        chosen.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class RepetitionSplit:
    """Index sets of one repetition.

    `target_select` holds labeled target cells used to choose the best epoch (paper protocol only);
    `target_eval` the labeled target cells that are scored at the end (empty with shots = all).
    """

    source_train: np.ndarray
    source_val: np.ndarray
    shots: np.ndarray
    unlabeled: np.ndarray
    target_select: np.ndarray
    target_eval: np.ndarray


def repetition_split(
    source_labels: np.ndarray,
    target_labels: np.ndarray,
    shots: int | str,
    protocol: str,
    val_fraction: float,
    seed: int,
) -> RepetitionSplit:
    """Splits and shots of repetition `seed`, drawn from a generator seeded by it alone.

    Every target cell but the shots is unlabeled training data (its label is never seen in
    training); the protocols differ only in which labels choose the epoch and which are scored.
    """
    rng = np.random.default_rng(seed)
    all_source = np.arange(len(source_labels))
    source_train, source_val = stratified_split(source_labels, all_source, val_fraction, rng)
    labeled = np.flatnonzero(~np.isnan(target_labels))
    if shots == "all":
        shot_idx = labeled
        select = evaluate = np.array([], dtype=int)
    else:
        target_train, target_val = stratified_split(target_labels, labeled, val_fraction, rng)
        shot_idx = draw_shots(target_labels, target_train, int(shots), rng)
        evaluate = np.setdiff1d(labeled, shot_idx)
        select = target_val if protocol == "paper" else np.array([], dtype=int)
    unlabeled = np.setdiff1d(np.arange(len(target_labels)), shot_idx)
    return RepetitionSplit(source_train, source_val, shot_idx, unlabeled, select, evaluate)
