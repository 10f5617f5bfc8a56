"""The competing methods of the paper's benchmark, implemented from their published descriptions.

Each trains on one repetition's split with the same epochs, batch size, optimiser, class-balanced
source batches and best-epoch selection as SSDA4Drug, and returns a scorer of P(sensitive), so
comparisons with `ssda` are paired. All three ignore the labeled target shots (they are
unsupervised domain adaptation); they are evaluated on the same cells.
- `scad` (Zheng et al. 2023): encoder + predictor on labeled bulk, a domain discriminator behind a
  gradient-reversal layer on bulk vs unlabeled cells.
- `scdeal` (Chen et al. 2022): a denoising autoencoder + predictor trained on bulk; a single-cell
  encoder starting from the bulk encoder (then pre-trained as a denoising autoencoder on the
  cells, or not: `scdeal_nopretrain`) is aligned to the bulk codes by an RBF-kernel MMD while the
  bulk encoder and predictor keep training on the bulk labels (scDEAL's DaNN stage).
- `codeae` (He et al. 2022): shared and per-domain private encoders, one shared decoder, an
  adversarial critic (here behind gradient reversal) aligning the shared codes, then a classifier
  on the shared code.
"""

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import RepetitionSplit
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.module.losses import mask_input
from ssda_model.module.networks import grad_reverse
from ssda_model.train.trainer import (BestEpoch, DomainTensors, class_balanced_weights, make_optimizer,
                                      selection_set)

COMPETITORS = ("scad", "scdeal", "scdeal_nopretrain", "codeae")
Scorer = Callable[[torch.Tensor], np.ndarray]


def _mlp(widths: tuple[int, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def rbf_mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Maximum mean discrepancy with a sum of RBF kernels at bandwidths around the median distance."""
    joint = torch.cat([a, b])
    distances = torch.cdist(joint, joint).pow(2)
    scale = distances.detach().median().clamp_min(1e-6)
    kernel = sum(torch.exp(-distances / (scale * f)) for f in (0.25, 0.5, 1.0, 2.0, 4.0))
    n = len(a)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


class _Batches:
    """Class-balanced bulk batches and shuffled unlabeled-cell batches for one repetition."""

    def __init__(self, data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int) -> None:
        self.data, self.config = data, config
        self.generator = torch.Generator().manual_seed(seed)
        self.source = torch.as_tensor(split.source_train, dtype=torch.long)
        self.weights = class_balanced_weights(data.source_y[split.source_train]).cpu()
        self.unlabeled = torch.as_tensor(split.unlabeled, dtype=torch.long)
        self.steps = max(1, math.ceil(len(split.source_train) / config.batch_size))

    def source_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        pick = self.source[torch.multinomial(self.weights, self.config.batch_size, True, generator=self.generator)]
        return self.data.source_x[pick], self.data.source_y[pick]

    def cell_batch(self) -> torch.Tensor:
        order = torch.randperm(len(self.unlabeled), generator=self.generator)[:self.config.batch_size]
        return self.data.target_x[self.unlabeled[order]]


def _fit(modules: nn.ModuleDict, step: Callable[[], torch.Tensor], score: Callable[[torch.Tensor], torch.Tensor],
         data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, steps: int,
         params=None) -> Scorer:
    """Run `config.epochs` epochs of `step` losses, keep the best epoch by the protocol's selection set."""
    optimizer = make_optimizer(config, list(params if params is not None else modules.parameters()))
    _, select_pool, select_rows, select_y = selection_set(data, split)
    select_x = select_pool[select_rows]
    best = BestEpoch()

    @torch.no_grad()
    def scorer(x: torch.Tensor) -> np.ndarray:
        modules.eval()
        return score(x).cpu().numpy()

    for epoch in range(1, config.epochs + 1):
        modules.train()
        for _ in range(steps):
            loss = step()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        best.update(epoch, pooled_auc_aupr(select_y, scorer(select_x))[0], lambda: copy.deepcopy(modules.state_dict()))
    modules.load_state_dict(best.state)
    return scorer


def train_scad(data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int) -> Scorer:
    torch.manual_seed(seed)
    batches = _Batches(data, split, config, seed)
    genes, latent = data.source_x.shape[1], config.latent_dim
    m = nn.ModuleDict({"encoder": _mlp((genes, *config.encoder_dims), config.dropout),
                       "predictor": _mlp((latent, config.predictor_dim, 1), config.dropout),
                       "discriminator": _mlp((latent, 64, 1), config.dropout)}).to(data.source_x.device)

    def step() -> torch.Tensor:
        xs, ys = batches.source_batch()
        xt = batches.cell_batch()
        zs, zt = m["encoder"](xs), m["encoder"](xt)
        loss = F.binary_cross_entropy_with_logits(m["predictor"](zs).squeeze(1), ys.float())
        domain = m["discriminator"](grad_reverse(torch.cat([zs, zt]), config.eta)).squeeze(1)
        labels = torch.cat([torch.ones(len(zs)), torch.zeros(len(zt))]).to(domain.device)
        return loss + F.binary_cross_entropy_with_logits(domain, labels)

    return _fit(m, step, lambda x: torch.sigmoid(m["predictor"](m["encoder"](x))).squeeze(1), data, split, config,
                batches.steps)


def train_scdeal(data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int,
                 pretrain: bool = True) -> Scorer:
    torch.manual_seed(seed)
    batches = _Batches(data, split, config, seed)
    genes, latent = data.source_x.shape[1], config.latent_dim
    device = data.source_x.device
    mask_gen = torch.Generator(device=device).manual_seed(seed)
    m = nn.ModuleDict({"bulk_encoder": _mlp((genes, *config.encoder_dims), config.dropout),
                       "bulk_decoder": _mlp((latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout),
                       "predictor": _mlp((latent, config.predictor_dim, 1), config.dropout),
                       "cell_encoder": _mlp((genes, *config.encoder_dims), config.dropout),
                       "cell_decoder": _mlp((latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout)
                       }).to(device)
    bulk = [*m["bulk_encoder"].parameters(), *m["bulk_decoder"].parameters(), *m["predictor"].parameters()]
    optimizer = make_optimizer(config, bulk)
    stage_epochs = max(1, config.epochs // 2)
    for _ in range(stage_epochs * batches.steps):  # stage 1: bulk denoising AE + predictor
        xs, ys = batches.source_batch()
        z = m["bulk_encoder"](mask_input(xs, config.noise_rate, mask_gen))
        loss = F.mse_loss(m["bulk_decoder"](z), xs) + F.binary_cross_entropy_with_logits(
            m["predictor"](z).squeeze(1), ys.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    m["cell_encoder"].load_state_dict(m["bulk_encoder"].state_dict())
    m["cell_decoder"].load_state_dict(m["bulk_decoder"].state_dict())
    cell = [*m["cell_encoder"].parameters(), *m["cell_decoder"].parameters()]
    if pretrain:  # stage 2: the cells' own denoising AE
        optimizer = make_optimizer(config, cell)
        for _ in range(stage_epochs * batches.steps):
            xt = batches.cell_batch()
            loss = F.mse_loss(m["cell_decoder"](m["cell_encoder"](mask_input(xt, config.noise_rate, mask_gen))), xt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def align() -> torch.Tensor:  # stage 3: MMD between cell and bulk codes, bulk labels kept
        xs, ys = batches.source_batch()
        xt = batches.cell_batch()
        zs, zt = m["bulk_encoder"](xs), m["cell_encoder"](xt)
        classify = F.binary_cross_entropy_with_logits(m["predictor"](zs).squeeze(1), ys.float())
        return classify + rbf_mmd(zt, zs) + F.mse_loss(m["cell_decoder"](zt), xt)

    def score(x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(m["predictor"](m["cell_encoder"](x))).squeeze(1)

    return _fit(m, align, score, data, split, config, batches.steps,
                params=[*cell, *m["bulk_encoder"].parameters(), *m["predictor"].parameters()])


def train_codeae(data: DomainTensors, split: RepetitionSplit, config: SSDAConfig, seed: int) -> Scorer:
    torch.manual_seed(seed)
    batches = _Batches(data, split, config, seed)
    genes, latent = data.source_x.shape[1], config.latent_dim
    m = nn.ModuleDict({"shared": _mlp((genes, *config.encoder_dims), config.dropout),
                       "private_bulk": _mlp((genes, *config.encoder_dims), config.dropout),
                       "private_cell": _mlp((genes, *config.encoder_dims), config.dropout),
                       "decoder": _mlp((2 * latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout),
                       "critic": _mlp((latent, 64, 1), config.dropout),
                       "classifier": _mlp((latent, config.predictor_dim, 1), config.dropout)}).to(data.source_x.device)

    def step() -> torch.Tensor:
        xs, ys = batches.source_batch()
        xt = batches.cell_batch()
        ss, st = m["shared"](xs), m["shared"](xt)
        ps, pt = m["private_bulk"](xs), m["private_cell"](xt)
        reconstruction = F.mse_loss(m["decoder"](torch.cat([ss, ps], 1)), xs) + \
            F.mse_loss(m["decoder"](torch.cat([st, pt], 1)), xt)
        orthogonal = (F.normalize(ss, dim=1) * F.normalize(ps, dim=1)).sum(1).pow(2).mean() + \
            (F.normalize(st, dim=1) * F.normalize(pt, dim=1)).sum(1).pow(2).mean()
        domain = m["critic"](grad_reverse(torch.cat([ss, st]), config.eta)).squeeze(1)
        labels = torch.cat([torch.ones(len(ss)), torch.zeros(len(st))]).to(domain.device)
        critic = F.binary_cross_entropy_with_logits(domain, labels)
        classify = F.binary_cross_entropy_with_logits(m["classifier"](ss).squeeze(1), ys.float())
        return reconstruction + orthogonal + critic + classify

    return _fit(m, step, lambda x: torch.sigmoid(m["classifier"](m["shared"](x))).squeeze(1), data, split, config,
                batches.steps)


def train_competitor(method: str, data: DomainTensors, split: RepetitionSplit, config: SSDAConfig,
                     seed: int) -> Scorer:
    if method == "scad":
        return train_scad(data, split, config, seed)
    if method in ("scdeal", "scdeal_nopretrain"):
        return train_scdeal(data, split, config, seed, pretrain=method == "scdeal")
    if method == "codeae":
        return train_codeae(data, split, config, seed)
    raise ValueError(f"unknown competitor {method!r}; expected one of {', '.join(COMPETITORS)}")
