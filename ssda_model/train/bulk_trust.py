"""How much the default method (`ssda_auto`) trusts the bulk in one repetition, read from the
bulk lines it trains on, its shots and the cells' expression: never from a label but the shots'.

What carries over from the bulk is its class-mean direction (docs/method.md), and a bulk whose
labels disagree with the cells points it the wrong way. So the agreement is the cosine between
the bulk's sensitive-minus-resistant mean difference and the shots', both projected on the cells'
main axes of variation: a single cell's difference from another is mostly noise spread over every
gene, which a bulk that says nothing about the cells lines up with by chance (SCC47 under
NVP-TAE684's labels at 1 shot); along the axes the cells actually vary on, that noise averages
out. Times √axes, it is about N(0, 1) for such a bulk. The bulk's weight rises from 0 at no
agreement to `ssda_prior`'s 0.1 at `FULL_TRUST` standard units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ssda_model.data.splits import RepetitionSplit

MAX_WEIGHT = 0.1  # ssda_prior's: the bulk as a prior the shots outweigh
FULL_TRUST = 2.0  # agreement (standard units) from which the bulk has its full weight
MAIN_AXES = 5  # the cells' principal axes the agreement is read on
AXES_CELLS = 2048  # at most this many cells, evenly spaced, estimate them (a 10⁵-cell study too)


@dataclass(frozen=True)
class BulkTrust:
    """One repetition's agreement of bulk and shots (standard units) and the bulk weight it gives."""

    agreement: float
    weight: float


def class_mean_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sensitive (1) minus resistant (0) mean expression, per gene."""
    return x[y == 1].double().mean(0) - x[y == 0].double().mean(0)


def main_axes(target_x: torch.Tensor) -> torch.Tensor:
    """The cells' top `MAIN_AXES` principal axes (orthonormal rows, axes × genes), from their
    expression alone; through the smaller of the cells' Gram matrix and the genes' covariance."""
    rows = torch.linspace(0, len(target_x) - 1, min(len(target_x), AXES_CELLS), device=target_x.device)
    cells = target_x[rows.round().long()].double()
    cells = cells - cells.mean(0)
    k = min(MAIN_AXES, len(cells) - 1)
    if len(cells) <= cells.shape[1]:
        top = torch.linalg.eigh(cells @ cells.T).eigenvectors[:, -k:].flip(1)
        axes = (cells.T @ top).T
    else:
        axes = torch.linalg.eigh(cells.T @ cells).eigenvectors[:, -k:].flip(1).T
    return axes / axes.norm(dim=1, keepdim=True)


def bulk_trust(
    source_x: torch.Tensor,
    source_y: torch.Tensor,
    target_x: torch.Tensor,
    target_y: np.ndarray,
    split: RepetitionSplit,
    axes: torch.Tensor,
) -> BulkTrust:
    """The agreement and bulk weight of `split`, from its training bulk lines, its shots and the
    cells' `main_axes`."""
    train = torch.as_tensor(split.source_train, device=source_x.device)
    shots = torch.as_tensor(split.shots, device=target_x.device)
    shot_y = torch.as_tensor(target_y[split.shots], device=target_x.device)
    bulk = axes @ class_mean_difference(source_x[train], source_y[train])
    cells = axes @ class_mean_difference(target_x[shots], shot_y)
    cosine = float(torch.nn.functional.cosine_similarity(bulk, cells, dim=0))
    agreement = cosine * math.sqrt(len(axes))
    return BulkTrust(agreement, MAX_WEIGHT * min(max(agreement / FULL_TRUST, 0.0), 1.0))
