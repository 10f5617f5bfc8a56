"""Every method's batches: one class-balanced sampler for all, one generator per (repetition, purpose).

Member r of an ensemble draws its source lines, shots, unlabeled cells, denoising masks and
dropout masks from generators seeded by r alone, so its batches are the same whether it trains
alone or beside other members, and whichever method trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import RepetitionSplit

_INDICES, _MASKS, _DROPOUT = 0, 1, 2  # stream numbers of the purposes


def class_balanced_weights(source_y: torch.Tensor) -> torch.Tensor:
    """Sampling weight 1/p(class) per source sample, for torch.multinomial."""
    counts = torch.bincount(source_y, minlength=2).clamp_min(1).float()
    return (1.0 / counts)[source_y]


def member_rows(pool: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """pool[rows] for (R, batch) row indices, as one `index_select`: advanced indexing with a 2-D
    index takes a slower general path on the CPU (about 3× for a step's batch)."""
    return pool.index_select(0, rows.flatten()).view(*rows.shape, *pool.shape[1:])


def stream_generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """An independent generator per (repetition, purpose), so no two random streams coincide."""
    derived = int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(derived)


class MemberDraws:
    """Member r's batches: class-balanced source draws, its shots and a cycle over its unlabeled
    cells, and the generators of its denoising (`masks`) and dropout (`dropout`) masks."""

    def __init__(self, source_y: torch.Tensor, split: RepetitionSplit, config: SSDAConfig, seed: int) -> None:
        device = source_y.device
        self.batch_size = config.batch_size
        self.indices = stream_generator(seed, _INDICES, device)
        self.masks = stream_generator(seed, _MASKS, device)
        self.dropout = stream_generator(seed, _DROPOUT, device)
        self.source_train = torch.as_tensor(split.source_train, dtype=torch.long, device=device)
        self.balance = class_balanced_weights(source_y[self.source_train])
        self.shots = torch.as_tensor(split.shots, dtype=torch.long, device=device)
        self.unlabeled = torch.as_tensor(split.unlabeled, dtype=torch.long, device=device)
        self.pending = self.unlabeled[:0]

    def source(self, steps: int) -> torch.Tensor:
        pick = torch.multinomial(self.balance, steps * self.batch_size, True, generator=self.indices)
        return self.source_train[pick].view(steps, self.batch_size)

    def shot_batches(self, steps: int) -> torch.Tensor:
        """All shots in every batch, or a fresh subset of batch-size shots when there are more."""
        if len(self.shots) <= self.batch_size:
            return self.shots.expand(steps, -1)
        return torch.stack(
            [self.shots[self._permutation(len(self.shots))[: self.batch_size]] for _ in range(steps)]
        )

    def unlabeled_batches(self, steps: int) -> torch.Tensor:
        """Consecutive batches of a walk through fresh permutations of the unlabeled cells."""
        size = min(self.batch_size, len(self.unlabeled))
        while len(self.pending) < steps * size:
            self.pending = torch.cat([self.pending, self.unlabeled[self._permutation(len(self.unlabeled))]])
        batches, self.pending = self.pending[: steps * size], self.pending[steps * size :]
        return batches.view(steps, size)

    def _permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.indices, device=self.source_train.device)


@dataclass(frozen=True)
class EpochBatches:
    """Row indices of one epoch's batches, (members, steps, batch), for the parts a method uses."""

    source: torch.Tensor | None
    shots: torch.Tensor | None
    unlabeled: torch.Tensor | None

    @classmethod
    def draw(
        cls, members: list[MemberDraws], steps: int, source: bool, shots: bool, unlabeled: bool
    ) -> EpochBatches:
        """Each member draws in the same order (source, shots, unlabeled) alone or batched."""
        return cls(
            source=torch.stack([m.source(steps) for m in members]) if source else None,
            shots=torch.stack([m.shot_batches(steps) for m in members]) if shots else None,
            unlabeled=torch.stack([m.unlabeled_batches(steps) for m in members]) if unlabeled else None,
        )
