"""How much the default method (`ssda_auto`) trusts the bulk in one repetition, read from the
bulk lines it trains on and its shots alone: never from a selection or evaluation cell.

What carries over from the bulk is its class-mean direction (docs/method.md), and a bulk whose
labels disagree with the cells points it the wrong way. So the agreement is the cosine between
the bulk's sensitive-minus-resistant mean difference and the shots', in units of its spread for
unrelated directions (1/√genes): about N(0, 1) when the bulk says nothing about the cells. The
bulk's weight rises from 0 at no agreement to `ssda_prior`'s 0.1 at `FULL_TRUST` standard units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ssda_model.data.splits import RepetitionSplit

MAX_WEIGHT = 0.1  # ssda_prior's: the bulk as a prior the shots outweigh
FULL_TRUST = 2.0  # agreement (standard units) from which the bulk has its full weight


@dataclass(frozen=True)
class BulkTrust:
    """One repetition's agreement of bulk and shots (standard units) and the bulk weight it gives."""

    agreement: float
    weight: float


def class_mean_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sensitive (1) minus resistant (0) mean expression, per gene."""
    return x[y == 1].double().mean(0) - x[y == 0].double().mean(0)


def bulk_trust(
    source_x: torch.Tensor,
    source_y: torch.Tensor,
    target_x: torch.Tensor,
    target_y: np.ndarray,
    split: RepetitionSplit,
) -> BulkTrust:
    """The agreement and bulk weight of `split`, from its training bulk lines and its shots."""
    train = torch.as_tensor(split.source_train, device=source_x.device)
    shots = torch.as_tensor(split.shots, device=target_x.device)
    shot_y = torch.as_tensor(target_y[split.shots], device=target_x.device)
    bulk = class_mean_difference(source_x[train], source_y[train])
    cells = class_mean_difference(target_x[shots], shot_y)
    cosine = float(torch.nn.functional.cosine_similarity(bulk, cells, dim=0))
    agreement = cosine * math.sqrt(bulk.numel())
    return BulkTrust(agreement, MAX_WEIGHT * min(max(agreement / FULL_TRUST, 0.0), 1.0))
