"""The training loop every method shares (SSDA4Drug and the competitors): the domains as device
tensors, the optimiser, best-epoch selection, and R repetitions trained as one stacked ensemble.

Member r of an ensemble has its own split, sampler, masks, dropout and best epoch, every one drawn
from generators seeded by r alone, so it ends with the same weights whether it trains alone or
beside others (to floating-point rounding of the batched matmuls).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch import nn

from ssda_model.config import SSDAConfig
from ssda_model.data.prepare import PreparedDomains
from ssda_model.data.splits import RepetitionSplit
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.module.ensemble import cast_weights
from ssda_model.train.bulk_trust import BulkTrust
from ssda_model.train.device import resolve_precision
from ssda_model.train.draws import EpochBatches, MemberDraws

EpochCallback = Callable[[int, dict[str, float]], None]  # (seed of the repetition, epoch record)

_TRAINING_STATE_BYTES = 2 * 1024**3  # weights + gradients + optimiser state of one ensemble


@dataclass(frozen=True)
class DomainTensors:
    """z-scored expression and labels of both domains on the training device (NaN = unlabeled)."""

    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor
    target_y: np.ndarray

    @classmethod
    def on_device(cls, domains: PreparedDomains, device: torch.device) -> DomainTensors:
        """The prepared matrices put on the training device once."""
        return cls(
            source_x=torch.as_tensor(domains.source_x, device=device),
            source_y=torch.as_tensor(domains.source_y, device=device),
            target_x=torch.as_tensor(domains.target_x, device=device),
            target_y=domains.target_y,
        )


@dataclass
class RepetitionResult:
    """One repetition's best-epoch weights, which labels chose the epoch, and its per-epoch record."""

    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    selection: str  # which labels chose the epoch: "target_val", "source_val" or none ("last_epoch")
    history: list[dict[str, float]] = field(default_factory=list)
    bulk_trust: BulkTrust | None = None  # what ssda_auto chose for this repetition


@contextmanager
def deterministic_algorithms(device: torch.device) -> Iterator[None]:
    """Deterministic kernels while training on a GPU, without NaN-filling every fresh tensor: that
    fill, on by default in deterministic mode, costs a pass over memory per allocation (~15 % of a
    bf16 step in our profile), and our code never reads memory it has not written. On the CPU the
    kernels we call are deterministic for a given thread count already, and setting the flag
    imports TorchInductor: about 1 s of every `ssda fit`'s start-up, for nothing."""
    if device.type != "cuda":
        yield
        return
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]  # type: ignore[attr-defined]


def make_optimizer(config: SSDAConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The configured optimiser; on the CPU its fused kernel (one pass over each tensor per step)."""
    fused = params[0].device.type == "cpu"
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, fused=fused)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, fused=fused)
    return torch.optim.Adagrad(params, lr=config.lr, fused=fused)


@torch.no_grad()
def predict_scores(net: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """P(sensitive) in eval mode (no mask, no dropout, BN running statistics)."""
    net.eval()
    sensitivity = cast(Callable[[torch.Tensor], torch.Tensor], net.sensitivity)
    out = [sensitivity(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(out).cpu().numpy() if out else np.array([])


def selection_set(
    data: DomainTensors, split: RepetitionSplit
) -> tuple[str, torch.Tensor, np.ndarray, np.ndarray]:
    """Which labelled cells choose the best epoch, as (name, their domain's matrix, rows, labels):
    target-val in the paper protocol, else source-val."""
    if len(split.target_select):
        return "target_val", data.target_x, split.target_select, data.target_y[split.target_select]
    return "source_val", data.source_x, split.source_val, data.source_y[split.source_val].cpu().numpy()


def chance_ceiling(labels: np.ndarray) -> float:
    """0.5 plus one standard error of the AUC of a score that knows nothing of these labels (the
    Mann–Whitney null): a best epoch that stays below it was told apart from the others by noise.
    Infinite for labels of one class, which tell nothing."""
    n1 = int((labels == 1).sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return math.inf
    return 0.5 + math.sqrt((n1 + n0 + 1) / (12 * n1 * n0))


class BestEpoch:
    """Keeps the weights of the epoch with the highest selection AUC (first one on ties)."""

    def __init__(self) -> None:
        self.score, self.epoch = -math.inf, 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, auc: float, snapshot: Callable[[], dict[str, torch.Tensor]]) -> None:
        """`snapshot` returns a copy of the weights; it is called only when the epoch is the best so far."""
        score = auc if not math.isnan(auc) else -math.inf
        if self.state is None or score > self.score:
            self.score, self.epoch, self.state = score, epoch, snapshot()


def ensemble_size(n_genes: int, config: SSDAConfig, autoencoders: float = 1.0) -> int:
    """How many repetitions train together: all of them, unless their training state (weights,
    gradients and optimiser state, ~12 bytes per weight) would pass 2 GiB. `autoencoders`: the
    network's size in encoder + decoder pairs (SSDA 1, scDEAL 2; one encoder alone is 0.5)."""
    if not config.batch_repetitions:
        return 1
    widths = (n_genes, *config.encoder_dims)
    weights = autoencoders * 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return max(1, min(config.repetitions, int(_TRAINING_STATE_BYTES // (12 * weights))))


StepLosses = Callable[[EpochBatches, int], tuple[torch.Tensor, torch.Tensor]]  # → (terms (T, R), loss)
MemberScores = Callable[[torch.Tensor], torch.Tensor]  # (R, B, genes) → P(sensitive) (R, B)


@torch.no_grad()
def score_member_rows(
    net: nn.Module, score: MemberScores, pool: torch.Tensor, rows: list[np.ndarray], chunk: int = 4096
) -> list[np.ndarray]:
    """P(sensitive) of member r on pool[rows[r]], in eval mode; members may have different row counts."""
    net.eval()
    width = max(len(r) for r in rows)
    padded = torch.as_tensor(
        np.stack([np.pad(r, (0, width - len(r))) for r in rows]), dtype=torch.long, device=pool.device
    )
    out = [score(pool[padded[:, i : i + chunk]]) for i in range(0, width, chunk)]
    scores = torch.cat(out, dim=1).float().cpu().numpy() if out else np.zeros((len(rows), 0), np.float32)
    return [member[: len(r)] for member, r in zip(scores, rows, strict=True)]


@contextmanager
def forward_precision(net: nn.Module, device: torch.device, bf16: bool) -> Iterator[None]:
    """A training step's forward pass: under bf16 autocast with each stacked weight cast once for
    the step (fp32 master weights), or plain fp32."""
    with (
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
        cast_weights(net, torch.bfloat16 if bf16 else None),
    ):
        yield


def fit_members(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    step_losses: StepLosses,
    score: MemberScores,
    loss_names: tuple[str, ...],
    members: list[MemberDraws],
    data: DomainTensors,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
    snapshot: Callable[[int], dict[str, torch.Tensor]],
    uses: tuple[bool, bool, bool],
    on_epoch: EpochCallback | None = None,
    last_at_chance: bool = False,
) -> list[RepetitionResult]:
    """Train an ensemble `config.epochs` epochs and keep each member's best-epoch weights.

    Every method trains through this loop. The epoch is chosen on target-val labels when the split
    has them (paper protocol), else on source-val AUC (strict protocol and shots = all). `uses`
    says which batches (source, shots, unlabeled) an epoch draws; `step_losses` turns one step of
    them into per-member loss terms and the loss to minimise; `snapshot(r)` copies member r's
    weights. The steps run in `config.precision` as resolved for the data's device. Data stay on
    their device; losses are read back once per epoch. `last_at_chance`: a member whose source-val
    AUC never passes `chance_ceiling` keeps its last epoch instead ("last_epoch"): those labels
    chose nothing.
    """
    device = data.source_x.device
    bf16 = resolve_precision(config.precision, device) == "bf16"
    steps = max(1, math.ceil(len(splits[0].source_train) / config.batch_size))
    selections = [selection_set(data, split) for split in splits]
    selection, select_pool = selections[0][:2]
    best = [BestEpoch() for _ in members]
    histories: list[list[dict[str, float]]] = [[] for _ in members]
    for epoch in range(1, config.epochs + 1):
        net.train()
        batches = EpochBatches.draw(members, steps, *uses)
        sums = torch.zeros(len(loss_names), len(members), device=device)
        for step in range(steps):
            with forward_precision(net, device, bf16):
                per_member, loss = step_losses(batches, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += per_member.detach().float()

        scores = score_member_rows(net, score, select_pool, [rows for _, _, rows, _ in selections])
        means = (sums / steps).cpu().numpy()
        for r, (seed, (_, _, _, select_y)) in enumerate(zip(seeds, selections, strict=True)):
            auc, aupr = pooled_auc_aupr(select_y, scores[r])
            record = {
                "epoch": epoch,
                **dict(zip(loss_names, means[:, r].tolist(), strict=True)),
                "val_auc": auc,
                "val_aupr": aupr,
            }
            histories[r].append(record)
            if on_epoch is not None:
                on_epoch(seed, record)
            best[r].update(epoch, auc, functools.partial(snapshot, r))
    chosen = [selection] * len(members)
    for r, (b, (_, _, _, select_y)) in enumerate(zip(best, selections, strict=True)):
        if last_at_chance and selection == "source_val" and b.score < chance_ceiling(select_y):
            b.epoch, b.state, chosen[r] = config.epochs, snapshot(r), "last_epoch"
    return [
        RepetitionResult(state_dict=cast(dict, b.state), best_epoch=b.epoch, selection=c, history=h)
        for b, c, h in zip(best, chosen, histories, strict=True)
    ]


def in_ensembles(
    train: Callable[[list[RepetitionSplit], list[int]], list],
    n_genes: int,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
    autoencoders: float = 1.0,
) -> list:
    """`train(splits, seeds)` over all (split, seed) pairs, `ensemble_size` of them at a time."""
    group = ensemble_size(n_genes, config.replace(repetitions=len(splits)), autoencoders)
    results = []
    for start in range(0, len(splits), group):
        results += train(splits[start : start + group], seeds[start : start + group])
    return results
