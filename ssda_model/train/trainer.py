"""SSDA4Drug training: the loss terms per method and best-epoch selection, for R repetitions at once.

The repetitions of a fit train as one `SSDAEnsemble`. Member r has its own split, shots, sampler,
denoising masks, dropout masks and best epoch, every one drawn from generators seeded by r alone,
so member r ends with the same weights whether it trains alone or beside others (to floating-point
rounding of the batched matmuls).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ssda_model.config import SSDAConfig
from ssda_model.data.prepare import PreparedDomains
from ssda_model.data.splits import RepetitionSplit
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.module.ensemble import SSDAEnsemble
from ssda_model.module.losses import (adversarial_loss, mask_members, member_cross_entropy, minimax_entropy_loss,
                                      reconstruction_loss)
from ssda_model.train.device import resolve_precision

EpochCallback = Callable[[int, dict[str, float]], None]  # (seed of the repetition, epoch record)

# Which loss terms each method switches on.
_TERMS = {
    "ssda": {"target_labeled", "unlabeled", "adv", "mme"},
    "ssda_no_adv": {"target_labeled", "unlabeled", "mme"},
    "ssda_no_mme": {"target_labeled", "unlabeled", "adv"},
    "source_only": set(),
    "target_only": {"target_labeled", "no_source"},
}
_LOSSES = ("loss_cls", "loss_reco", "loss_adv", "loss_mme")
_TRAINING_STATE_BYTES = 2 * 1024**3  # weights + gradients + optimiser state of one ensemble


@dataclass(frozen=True)
class DomainTensors:
    """z-scored expression and labels of both domains on the training device (NaN = unlabeled)."""

    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor
    target_y: np.ndarray

    @classmethod
    def on_device(cls, domains: PreparedDomains, device: torch.device) -> "DomainTensors":
        """The prepared matrices put on the training device once."""
        return cls(source_x=torch.as_tensor(domains.source_x, device=device),
                   source_y=torch.as_tensor(domains.source_y, device=device),
                   target_x=torch.as_tensor(domains.target_x, device=device), target_y=domains.target_y)


@dataclass
class RepetitionResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    selection: str  # which labels chose the epoch: "target_val" or "source_val"
    history: list[dict[str, float]] = field(default_factory=list)


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
    out = [net.sensitivity(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(out).cpu().numpy() if out else np.array([])


def selection_set(data: DomainTensors, split: RepetitionSplit) -> tuple[str, torch.Tensor, np.ndarray, np.ndarray]:
    """Which labelled cells choose the best epoch, as (name, their domain's matrix, rows, labels):
    target-val in the paper protocol, else source-val."""
    if len(split.target_select):
        return "target_val", data.target_x, split.target_select, data.target_y[split.target_select]
    return "source_val", data.source_x, split.source_val, data.source_y[split.source_val].cpu().numpy()


class BestEpoch:
    """Keeps the weights of the epoch with the highest selection AUC (first one on ties)."""

    def __init__(self) -> None:
        self.score, self.epoch, self.state = -math.inf, 0, None

    def update(self, epoch: int, auc: float, snapshot: Callable[[], dict[str, torch.Tensor]]) -> None:
        """`snapshot` returns a copy of the weights; it is called only when the epoch is the best so far."""
        score = auc if not math.isnan(auc) else -math.inf
        if self.state is None or score > self.score:
            self.score, self.epoch, self.state = score, epoch, snapshot()


def class_balanced_weights(source_y: torch.Tensor) -> torch.Tensor:
    """Sampling weight 1/p(class) per source sample, for torch.multinomial."""
    counts = torch.bincount(source_y, minlength=2).clamp_min(1).float()
    return (1.0 / counts)[source_y]


def ensemble_size(n_genes: int, config: SSDAConfig) -> int:
    """How many repetitions train together: all of them, unless their training state (weights,
    gradients and optimiser state, ~12 bytes per weight) would pass 2 GiB."""
    if not config.batch_repetitions:
        return 1
    widths = (n_genes, *config.encoder_dims)
    weights = 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))  # encoder + mirrored decoder
    return max(1, min(config.repetitions, _TRAINING_STATE_BYTES // (12 * weights)))


def _stream_generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """An independent generator per (repetition, purpose), so no two random streams coincide."""
    derived = int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(derived)


class _MemberDraws:
    """Member r's batches: class-balanced source draws, its shots and a cycle over its unlabeled cells."""

    def __init__(self, data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int) -> None:
        device = data.source_x.device
        self.batch_size = config.batch_size
        self.indices = _stream_generator(seed, 0, device)
        self.masks = _stream_generator(seed, 1, device)
        self.dropout = _stream_generator(seed, 2, device)
        self.source_train = torch.as_tensor(split.source_train, dtype=torch.long, device=device)
        self.balance = class_balanced_weights(data.source_y[self.source_train])
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
        return torch.stack([self.shots[self._permutation(len(self.shots))[:self.batch_size]] for _ in range(steps)])

    def unlabeled_batches(self, steps: int) -> torch.Tensor:
        """Consecutive batches of a walk through fresh permutations of the unlabeled cells."""
        size = min(self.batch_size, len(self.unlabeled))
        while len(self.pending) < steps * size:
            self.pending = torch.cat([self.pending, self.unlabeled[self._permutation(len(self.unlabeled))]])
        batches, self.pending = self.pending[:steps * size], self.pending[steps * size:]
        return batches.view(steps, size)

    def _permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.indices, device=self.source_train.device)


@torch.no_grad()
def _member_scores(net: SSDAEnsemble, pool: torch.Tensor, rows: torch.Tensor, chunk: int = 4096) -> np.ndarray:
    """P(sensitive) of member r on pool[rows[r]], (R, n), in eval mode."""
    net.eval()
    out = [net.sensitivity(pool[rows[:, i:i + chunk]]) for i in range(0, rows.shape[1], chunk)]
    return torch.cat(out, dim=1).float().cpu().numpy()


def train_repetitions(data: DomainTensors, splits: list[RepetitionSplit], seeds: list[int], config: SSDAConfig,
                      on_epoch: EpochCallback | None = None) -> list[RepetitionResult]:
    """Train one model per (split, seed) together and keep each one's best-epoch weights.

    The epoch is chosen on target-val labels when the split has them (paper protocol), else on
    source-val AUC (strict protocol and shots = all). Data stay on their device: batches are
    gathered there by indices drawn there, and losses are read back once per epoch.
    """
    device = data.source_x.device
    terms = _TERMS[config.method]
    members = [_MemberDraws(data, split, config, seed) for split, seed in zip(splits, seeds)]
    net = SSDAEnsemble.seeded(data.source_x.shape[1], config, seeds, [m.dropout for m in members], device)
    optimizer = make_optimizer(config, list(net.parameters()))
    target_y = torch.as_tensor(np.nan_to_num(data.target_y, nan=-1), dtype=torch.long, device=device)
    steps = max(1, math.ceil(len(splits[0].source_train) / config.batch_size))
    use_source = "no_source" not in terms
    use_shots = "target_labeled" in terms
    use_unlabeled = "unlabeled" in terms and len(splits[0].unlabeled) > 0

    selections = [selection_set(data, split) for split in splits]
    selection, select_pool = selections[0][:2]
    select_rows = torch.as_tensor(np.stack([rows for _, _, rows, _ in selections]), dtype=torch.long, device=device)
    best = [BestEpoch() for _ in members]
    histories: list[list[dict[str, float]]] = [[] for _ in members]
    bf16 = resolve_precision(config.precision, device) == "bf16"
    no_term = torch.zeros(len(members), device=device)
    for epoch in range(1, config.epochs + 1):
        net.train()
        source = torch.stack([m.source(steps) for m in members]) if use_source else None
        shots = torch.stack([m.shot_batches(steps) for m in members]) if use_shots else None
        unlabeled = torch.stack([m.unlabeled_batches(steps) for m in members]) if use_unlabeled else None
        sums = torch.zeros(len(_LOSSES), len(members), device=device)
        for step in range(steps):
            labeled_x, labeled_y = [], []
            if source is not None:
                labeled_x.append(data.source_x[source[:, step]])
                labeled_y.append(data.source_y[source[:, step]])
            if shots is not None:
                labeled_x.append(data.target_x[shots[:, step]])
                labeled_y.append(target_y[shots[:, step]])
            n_labeled = sum(part.shape[1] for part in labeled_x)
            clean = torch.cat(labeled_x + ([data.target_x[unlabeled[:, step]]] if unlabeled is not None else []), 1)
            labels = torch.cat(labeled_y, dim=1)

            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16), \
                    net.cast_weights(torch.bfloat16 if bf16 else None):
                noisy = mask_members(clean, config.noise_rate, [m.masks for m in members])
                latent = net.encoder(noisy)
                features = net.predictor(latent)
                per_member = torch.stack([  # (term, member) in _LOSSES order
                    member_cross_entropy(net.classifier(features[:, :n_labeled]), labels),
                    reconstruction_loss(net, clean, latent),
                    adversarial_loss(net, noisy[:, :n_labeled], labels, config.epsilon) if "adv" in terms else no_term,
                    minimax_entropy_loss(net, features[:, n_labeled:], config.eta)
                    if "mme" in terms and unlabeled is not None else no_term])
                loss = (per_member[:3].sum(0) + config.lambda_mme * per_member[3]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += per_member.detach().float()

        scores = _member_scores(net, select_pool, select_rows)
        means = (sums / steps).cpu().numpy()
        for r, (seed, (_, _, _, select_y)) in enumerate(zip(seeds, selections)):
            auc, aupr = pooled_auc_aupr(select_y, scores[r])
            record = {"epoch": epoch, **dict(zip(_LOSSES, means[:, r].tolist())), "val_auc": auc, "val_aupr": aupr}
            histories[r].append(record)
            if on_epoch is not None:
                on_epoch(seed, record)
            best[r].update(epoch, auc, lambda r=r: net.member_state_dict(r))
    return [RepetitionResult(state_dict=b.state, best_epoch=b.epoch, selection=selection, history=h)
            for b, h in zip(best, histories)]


def train_in_ensembles(data: DomainTensors, splits: list[RepetitionSplit], seeds: list[int], config: SSDAConfig,
                       on_epoch: EpochCallback | None = None) -> list[RepetitionResult]:
    """`train_repetitions` over all (split, seed) pairs, `ensemble_size` of them at a time."""
    group = ensemble_size(data.source_x.shape[1], config.replace(repetitions=len(splits)))
    results = []
    for start in range(0, len(splits), group):
        results += train_repetitions(data, splits[start:start + group], seeds[start:start + group], config, on_epoch)
    return results
