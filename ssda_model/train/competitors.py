"""The competing methods of the paper's benchmark, implemented from their published descriptions.

Each trains on one repetition's split with the same epochs, batch size, optimiser, class-balanced
source batches and best-epoch selection as SSDA4Drug, through the same loop (`fit_members`): the
repetitions train together as a stacked ensemble, member r drawing its batches, masks and dropout
from generators seeded by r alone, so it ends as it would alone. Comparisons with `ssda` are
paired. All of them ignore the labeled target shots (they are unsupervised domain adaptation);
they are evaluated on the same cells. They train in the configured precision, as SSDA4Drug does
(`auto`: bf16 autocast where the CPU has bf16 units or on a GPU).
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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import RepetitionSplit
from ssda_model.module.ensemble import load_member_slice, member_slice, stack_networks
from ssda_model.module.losses import mask_members
from ssda_model.module.networks import grad_reverse
from ssda_model.train.device import resolve_precision
from ssda_model.train.draws import EpochBatches, MemberDraws, member_rows
from ssda_model.train.loop import (
    DomainTensors,
    fit_members,
    forward_precision,
    in_ensembles,
    make_optimizer,
    score_member_rows,
)

COMPETITORS = ("scad", "scdeal", "scdeal_nopretrain", "codeae")


def _mlp(widths: tuple[int, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def rbf_mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Maximum mean discrepancy per member between (R, n, d) and (R, m, d), with a sum of RBF
    kernels at bandwidths around the member's median squared distance."""
    joint = torch.cat([a, b], dim=1)
    distances = torch.cdist(joint, joint).pow(2)
    scale = distances.detach().flatten(1).median(dim=1).values.clamp_min(1e-6).view(-1, 1, 1)
    kernel = torch.zeros_like(distances)
    for f in (0.25, 0.5, 1.0, 2.0, 4.0):
        kernel = kernel + torch.exp(-distances / (scale * f))
    n = a.shape[1]
    return (
        kernel[:, :n, :n].mean((1, 2)) + kernel[:, n:, n:].mean((1, 2)) - 2 * kernel[:, :n, n:].mean((1, 2))
    )


def _bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per member of (R, B, 1) logits against (R, B) 0/1 labels."""
    return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.float(), reduction="none").mean(1)


def _mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction, target, reduction="none").mean((1, 2))


def _domain_loss(critic: nn.Module, bulk: torch.Tensor, cells: torch.Tensor, eta: float) -> torch.Tensor:
    """Bulk-vs-cell cross-entropy of a critic behind gradient reversal, per member."""
    logits = critic(grad_reverse(torch.cat([bulk, cells], dim=1), eta))
    labels = torch.cat([torch.ones(bulk.shape[:2]), torch.zeros(cells.shape[:2])], dim=1).to(logits.device)
    return _bce(logits, labels)


@dataclass
class _Ensemble:
    """One competitor's stacked networks with the draws and data its steps read."""

    net: nn.ModuleDict
    members: list[MemberDraws]
    data: DomainTensors
    steps: int
    bf16: bool

    def bulk(self, batches: EpochBatches, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = cast(torch.Tensor, batches.source)[:, step]
        return member_rows(self.data.source_x, rows), self.data.source_y[rows]

    def cells(self, batches: EpochBatches, step: int) -> torch.Tensor:
        return member_rows(self.data.target_x, cast(torch.Tensor, batches.unlabeled)[:, step])

    def masked(self, x: torch.Tensor, rate: float) -> torch.Tensor:
        return mask_members(x, rate, [m.masks for m in self.members])

    def pretrain(
        self,
        params: list[nn.Parameter],
        config: SSDAConfig,
        epochs: int,
        source: bool,
        loss: Callable[[EpochBatches, int], torch.Tensor],
    ) -> None:
        """A stage without selection: `epochs` epochs minimising `loss` (per member) over `params`."""
        optimizer = make_optimizer(config, params)
        self.net.train()
        for _ in range(epochs):
            batches = EpochBatches.draw(self.members, self.steps, source, False, not source)
            for step in range(self.steps):
                with forward_precision(self.net, self.data.source_x.device, self.bf16):
                    per_member = loss(batches, step)
                optimizer.zero_grad(set_to_none=True)
                per_member.sum().backward()
                optimizer.step()


def _ensemble(
    networks: Callable[[], dict[str, nn.Module]],
    data: DomainTensors,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
) -> _Ensemble:
    """Member r's networks as `networks()` builds them after `torch.manual_seed(seeds[r])`, stacked."""
    members = [
        MemberDraws(data.source_y, split, config, seed) for split, seed in zip(splits, seeds, strict=True)
    ]
    built = []
    for seed in seeds:
        torch.manual_seed(seed)
        built.append(nn.ModuleDict(networks()))
    net = stack_networks(built, [m.dropout for m in members]).to(data.source_x.device)
    steps = max(1, math.ceil(len(splits[0].source_train) / config.batch_size))
    bf16 = resolve_precision(config.precision, data.source_x.device) == "bf16"
    return _Ensemble(net, members, data, steps, bf16)


def _train_and_score(
    ens: _Ensemble,
    step: Callable[[EpochBatches, int], torch.Tensor],
    score: Callable[[torch.Tensor], torch.Tensor],
    params: list[nn.Parameter],
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
) -> list[np.ndarray]:
    """Train with best-epoch selection, load each member's best weights, score its evaluation cells."""

    def step_losses(batches: EpochBatches, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        per_member = step(batches, i)
        return per_member.unsqueeze(0), per_member.sum()

    results = fit_members(
        ens.net,
        make_optimizer(config, params),
        step_losses,
        score,
        ("loss",),
        ens.members,
        ens.data,
        splits,
        seeds,
        config,
        lambda r: member_slice(ens.net, r),
        (True, False, True),
    )
    for r, result in enumerate(results):
        load_member_slice(ens.net, r, result.state_dict)
    return score_member_rows(ens.net, score, ens.data.target_x, [split.target_eval for split in splits])


def _sensitivity(head: nn.Module, encoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: torch.sigmoid(head(encoder(x))).squeeze(-1)


def train_scad(
    data: DomainTensors, splits: list[RepetitionSplit], seeds: list[int], config: SSDAConfig
) -> list[np.ndarray]:
    """SCAD's repetitions as one stacked ensemble; each member's P(sensitive) of the target cells."""
    genes, latent = data.source_x.shape[1], config.latent_dim
    ens = _ensemble(
        lambda: {
            "encoder": _mlp((genes, *config.encoder_dims), config.dropout),
            "predictor": _mlp((latent, config.predictor_dim, 1), config.dropout),
            "discriminator": _mlp((latent, 64, 1), config.dropout),
        },
        data,
        splits,
        seeds,
        config,
    )
    m = ens.net

    def step(batches: EpochBatches, i: int) -> torch.Tensor:
        xs, ys = ens.bulk(batches, i)
        zs, zt = m["encoder"](xs), m["encoder"](ens.cells(batches, i))
        return _bce(m["predictor"](zs), ys) + _domain_loss(m["discriminator"], zs, zt, config.eta)

    return _train_and_score(
        ens, step, _sensitivity(m["predictor"], m["encoder"]), list(m.parameters()), splits, seeds, config
    )


def train_scdeal(
    data: DomainTensors,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
    pretrain: bool = True,
) -> list[np.ndarray]:
    """The same for scDEAL (with or without the cell autoencoder's pre-training)."""
    genes, latent = data.source_x.shape[1], config.latent_dim
    ens = _ensemble(
        lambda: {
            "bulk_encoder": _mlp((genes, *config.encoder_dims), config.dropout),
            "bulk_decoder": _mlp((latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout),
            "predictor": _mlp((latent, config.predictor_dim, 1), config.dropout),
            "cell_encoder": _mlp((genes, *config.encoder_dims), config.dropout),
            "cell_decoder": _mlp((latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout),
        },
        data,
        splits,
        seeds,
        config,
    )
    m = ens.net
    stage_epochs = max(1, config.epochs // 2)

    def bulk_autoencoder(batches: EpochBatches, i: int) -> torch.Tensor:  # stage 1: bulk DAE + predictor
        xs, ys = ens.bulk(batches, i)
        z = m["bulk_encoder"](ens.masked(xs, config.noise_rate))
        return _mse(m["bulk_decoder"](z), xs) + _bce(m["predictor"](z), ys)

    def cell_autoencoder(batches: EpochBatches, i: int) -> torch.Tensor:  # stage 2: the cells' own DAE
        xt = ens.cells(batches, i)
        return _mse(m["cell_decoder"](m["cell_encoder"](ens.masked(xt, config.noise_rate))), xt)

    def align(batches: EpochBatches, i: int) -> torch.Tensor:  # stage 3: MMD between cell and bulk codes
        xs, ys = ens.bulk(batches, i)
        xt = ens.cells(batches, i)
        zs, zt = m["bulk_encoder"](xs), m["cell_encoder"](xt)
        return _bce(m["predictor"](zs), ys) + rbf_mmd(zt, zs) + _mse(m["cell_decoder"](zt), xt)

    bulk = [*m["bulk_encoder"].parameters(), *m["bulk_decoder"].parameters(), *m["predictor"].parameters()]
    ens.pretrain(bulk, config, stage_epochs, True, bulk_autoencoder)
    m["cell_encoder"].load_state_dict(m["bulk_encoder"].state_dict())
    m["cell_decoder"].load_state_dict(m["bulk_decoder"].state_dict())
    cell = [*m["cell_encoder"].parameters(), *m["cell_decoder"].parameters()]
    if pretrain:
        ens.pretrain(cell, config, stage_epochs, False, cell_autoencoder)
    return _train_and_score(
        ens,
        align,
        _sensitivity(m["predictor"], m["cell_encoder"]),
        [*cell, *m["bulk_encoder"].parameters(), *m["predictor"].parameters()],
        splits,
        seeds,
        config,
    )


def train_codeae(
    data: DomainTensors, splits: list[RepetitionSplit], seeds: list[int], config: SSDAConfig
) -> list[np.ndarray]:
    """The same for CODE-AE."""
    genes, latent = data.source_x.shape[1], config.latent_dim
    ens = _ensemble(
        lambda: {
            "shared": _mlp((genes, *config.encoder_dims), config.dropout),
            "private_bulk": _mlp((genes, *config.encoder_dims), config.dropout),
            "private_cell": _mlp((genes, *config.encoder_dims), config.dropout),
            "decoder": _mlp((2 * latent, *reversed(config.encoder_dims[:-1]), genes), config.dropout),
            "critic": _mlp((latent, 64, 1), config.dropout),
            "classifier": _mlp((latent, config.predictor_dim, 1), config.dropout),
        },
        data,
        splits,
        seeds,
        config,
    )
    m = ens.net

    def orthogonality(shared: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
        return (F.normalize(shared, dim=-1) * F.normalize(private, dim=-1)).sum(-1).pow(2).mean(1)

    def step(batches: EpochBatches, i: int) -> torch.Tensor:
        xs, ys = ens.bulk(batches, i)
        xt = ens.cells(batches, i)
        ss, st = m["shared"](xs), m["shared"](xt)
        ps, pt = m["private_bulk"](xs), m["private_cell"](xt)
        reconstruction = _mse(m["decoder"](torch.cat([ss, ps], -1)), xs) + _mse(
            m["decoder"](torch.cat([st, pt], -1)), xt
        )
        return (
            reconstruction
            + orthogonality(ss, ps)
            + orthogonality(st, pt)
            + _domain_loss(m["critic"], ss, st, config.eta)
            + _bce(m["classifier"](ss), ys)
        )

    return _train_and_score(
        ens, step, _sensitivity(m["classifier"], m["shared"]), list(m.parameters()), splits, seeds, config
    )


Trainer = Callable[[DomainTensors, list[RepetitionSplit], list[int], SSDAConfig], list[np.ndarray]]
_TRAIN: dict[str, tuple[Trainer, float]] = {
    "scad": (train_scad, 0.5),
    "scdeal": (train_scdeal, 2.0),
    "scdeal_nopretrain": (functools.partial(train_scdeal, pretrain=False), 2.0),
    "codeae": (train_codeae, 2.0),
}


def competitor_scores(
    method: str, data: DomainTensors, splits: list[RepetitionSplit], seeds: list[int], config: SSDAConfig
) -> list[np.ndarray]:
    """Each repetition's P(sensitive) on its split's evaluation cells, the repetitions trained in
    stacked ensembles (`ensemble_size` at a time; one at a time without `batch_repetitions`)."""
    if method not in _TRAIN:
        raise ValueError(f"unknown competitor {method!r}; expected one of {', '.join(COMPETITORS)}")
    train, autoencoders = _TRAIN[method]
    return in_ensembles(
        lambda s, r: train(data, s, r, config), data.source_x.shape[1], splits, seeds, config, autoencoders
    )
