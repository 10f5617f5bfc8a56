"""One repetition of SSDA4Drug training: the loss terms per method, best-epoch selection."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import RepetitionSplit
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.module.losses import adversarial_loss, mask_input, minimax_entropy_loss, reconstruction_loss
from ssda_model.module.networks import SSDANet

EpochCallback = Callable[[dict[str, float]], None]

# Which loss terms each method switches on.
_TERMS = {
    "ssda": {"target_labeled", "unlabeled", "adv", "mme"},
    "ssda_no_adv": {"target_labeled", "unlabeled", "mme"},
    "ssda_no_mme": {"target_labeled", "unlabeled", "adv"},
    "source_only": set(),
    "target_only": {"target_labeled", "no_source"},
}


@dataclass(frozen=True)
class DomainTensors:
    """z-scored expression and labels of both domains on the training device (NaN = unlabeled)."""

    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor
    target_y: np.ndarray


@dataclass
class RepetitionResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    selection: str  # which labels chose the epoch: "target_val" or "source_val"
    history: list[dict[str, float]] = field(default_factory=list)


def make_optimizer(config: SSDAConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9)
    return torch.optim.Adagrad(params, lr=config.lr)


@torch.no_grad()
def predict_scores(net: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """P(sensitive) in eval mode (no mask, no dropout, BN running statistics)."""
    net.eval()
    out = [net.sensitivity(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(out).cpu().numpy() if out else np.array([])


def selection_set(data: DomainTensors, split: RepetitionSplit) -> tuple[str, torch.Tensor, np.ndarray]:
    """Which labelled cells choose the best epoch: target-val (paper protocol), else source-val."""
    if len(split.target_select):
        return "target_val", data.target_x[split.target_select], data.target_y[split.target_select]
    return "source_val", data.source_x[split.source_val], data.source_y[split.source_val].cpu().numpy()


class BestEpoch:
    """Keeps a copy of the weights of the epoch with the highest selection AUC (first one on ties)."""

    def __init__(self) -> None:
        self.score, self.epoch, self.state = -math.inf, 0, None

    def update(self, epoch: int, auc: float, module: nn.Module) -> None:
        score = auc if not math.isnan(auc) else -math.inf
        if self.state is None or score > self.score:
            self.score, self.epoch, self.state = score, epoch, copy.deepcopy(module.state_dict())


def class_balanced_weights(source_y: torch.Tensor) -> torch.Tensor:
    """Sampling weight 1/p(class) per source sample, on the CPU for torch.multinomial."""
    counts = torch.bincount(source_y, minlength=2).clamp_min(1).float()
    return (1.0 / counts)[source_y].cpu()


class _UnlabeledCycle:
    """Walks a fresh permutation of the unlabeled cells, batch by batch."""

    def __init__(self, indices: np.ndarray, batch_size: int, generator: torch.Generator) -> None:
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.batch_size = min(batch_size, len(indices))
        self.generator = generator
        self.order = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        if len(self.order) < self.batch_size:
            fresh = self.indices[torch.randperm(len(self.indices), generator=self.generator)]
            self.order = torch.cat([self.order, fresh])
        batch, self.order = self.order[:self.batch_size], self.order[self.batch_size:]
        return batch


def train_repetition(data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int,
                     on_epoch: EpochCallback | None = None) -> RepetitionResult:
    """Train one model for repetition `seed` and keep the weights of its best epoch.

    The epoch is chosen on target-val labels when the split has them (paper protocol), else on
    source-val AUC (strict protocol and shots = all).
    """
    device = data.source_x.device
    torch.manual_seed(seed)
    index_gen = torch.Generator().manual_seed(seed)
    mask_gen = torch.Generator(device=device).manual_seed(seed)
    terms = _TERMS[config.method]

    net = SSDANet(data.source_x.shape[1], config).to(device)
    optimizer = make_optimizer(config, net.parameters())

    balance = class_balanced_weights(data.source_y[split.source_train])
    source_train = torch.as_tensor(split.source_train, dtype=torch.long)
    shots = torch.as_tensor(split.shots, dtype=torch.long)
    shot_y = torch.as_tensor(data.target_y[split.shots], dtype=torch.long, device=device)
    unlabeled = _UnlabeledCycle(split.unlabeled, config.batch_size, index_gen) if len(split.unlabeled) else None
    steps = max(1, math.ceil(len(split.source_train) / config.batch_size))

    selection, select_x, select_y = selection_set(data, split)
    best = BestEpoch()
    history = []
    for epoch in range(1, config.epochs + 1):
        net.train()
        sums = {"loss_cls": 0.0, "loss_reco": 0.0, "loss_adv": 0.0, "loss_mme": 0.0}
        for _ in range(steps):
            parts_x, parts_y = [], []
            if "no_source" not in terms:
                pick = source_train[torch.multinomial(balance, config.batch_size, True, generator=index_gen)]
                parts_x.append(data.source_x[pick])
                parts_y.append(data.source_y[pick])
            if "target_labeled" in terms:
                take = shots if len(shots) <= config.batch_size else \
                    shots[torch.randperm(len(shots), generator=index_gen)[:config.batch_size]]
                parts_x.append(data.target_x[take])
                parts_y.append(torch.as_tensor(data.target_y[take.numpy()], dtype=torch.long, device=device))
            n_labeled = sum(len(p) for p in parts_x)
            if "unlabeled" in terms and unlabeled is not None:
                parts_x.append(data.target_x[unlabeled.next()])
            clean = torch.cat(parts_x)
            labels = torch.cat(parts_y)

            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                noisy = mask_input(clean, config.noise_rate, mask_gen)
                latent = net.encoder(noisy)
                features = net.predictor(latent)
                loss_cls = nn.functional.cross_entropy(net.classifier(features[:n_labeled]), labels)
                loss_reco = reconstruction_loss(net, clean, latent)
                loss = loss_cls + loss_reco
                sums["loss_cls"] += loss_cls.item()
                sums["loss_reco"] += loss_reco.item()
                if "adv" in terms:
                    loss_adv = adversarial_loss(net, noisy[:n_labeled], labels, config.epsilon)
                    loss = loss + loss_adv
                    sums["loss_adv"] += loss_adv.item()
                if "mme" in terms and len(clean) > n_labeled:
                    loss_mme = minimax_entropy_loss(net, features[n_labeled:], config.eta)
                    loss = loss + config.lambda_mme * loss_mme
                    sums["loss_mme"] += loss_mme.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        auc, aupr = pooled_auc_aupr(select_y, predict_scores(net, select_x))
        record = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}, "val_auc": auc, "val_aupr": aupr}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        best.update(epoch, auc, net)
    return RepetitionResult(state_dict=best.state, best_epoch=best.epoch, selection=selection, history=history)
