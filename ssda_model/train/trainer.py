"""SSDA4Drug training: what each method trains on and its named loss terms, for R repetitions at
once through the shared loop (`ssda_model.train.loop.fit_members`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch

from ssda_model.config import SSDAConfig
from ssda_model.data.splits import RepetitionSplit
from ssda_model.module.ensemble import SSDAEnsemble
from ssda_model.module.losses import (
    adversarial_loss,
    mask_members,
    member_cross_entropy,
    minimax_entropy_loss,
    per_domain_cross_entropy,
    reconstruction_loss,
)
from ssda_model.train.blend import join_states, member_methods
from ssda_model.train.bulk_trust import BulkTrust, bulk_trust, main_axes
from ssda_model.train.draws import EpochBatches, MemberDraws, member_rows
from ssda_model.train.loop import (
    DomainTensors,
    EpochCallback,
    RepetitionResult,
    fit_members,
    in_ensembles,
    make_optimizer,
)


@dataclass(frozen=True)
class MethodSpec:
    """What a method trains on (labeled bulk, the target shots, unlabeled cells) and which named
    loss terms it adds; a new term is a name here, its function in `train_repetitions` and its
    weight in `term_weights`.

    `source_weight`: None takes the classification loss as one mean over a step's labeled rows (the
    paper: 32 bulk lines beside 2n shots, so the bulk outvotes the shots); a number takes the shots'
    mean plus that weight times the bulk's mean, so the bulk is a prior the shots can overrule;
    "auto" takes that weight per repetition from how far the bulk agrees with its shots
    (`ssda_model.train.bulk_trust`). `weighted_terms`: the terms that read the labels and take
    that weight; the others average over every labeled row. `last_at_chance`: where the bulk's
    validation labels choose the epoch (strict protocol), a member that never scores them above
    chance keeps its last epoch, as the bulk that cannot be predicted cannot choose either.
    """

    source: bool
    shots: bool
    unlabeled: bool
    terms: tuple[str, ...]
    source_weight: float | Literal["auto"] | None = None
    weighted_terms: tuple[str, ...] = ("cls",)
    last_at_chance: bool = False


LOSS_TERMS = ("cls", "reco", "adv", "mme")  # every term, in the order the history records them
METHOD_SPECS = {
    "ssda": MethodSpec(source=True, shots=True, unlabeled=True, terms=LOSS_TERMS),
    "ssda_auto": MethodSpec(
        source=True,
        shots=True,
        unlabeled=True,
        terms=LOSS_TERMS,
        source_weight="auto",
        weighted_terms=("cls", "adv"),  # the adversarial term reads the bulk's labels too
        last_at_chance=True,
    ),
    "ssda_prior": MethodSpec(source=True, shots=True, unlabeled=True, terms=LOSS_TERMS, source_weight=0.1),
    "ssda_no_adv": MethodSpec(source=True, shots=True, unlabeled=True, terms=("cls", "reco", "mme")),
    "ssda_no_mme": MethodSpec(source=True, shots=True, unlabeled=True, terms=("cls", "reco", "adv")),
    "source_only": MethodSpec(source=True, shots=False, unlabeled=False, terms=("cls", "reco")),
    "target_only": MethodSpec(source=False, shots=True, unlabeled=False, terms=("cls", "reco")),
}


def term_weights(config: SSDAConfig) -> dict[str, float]:
    """Each named term's weight in the total loss (the paper's: λ on minimax entropy, 1 elsewhere)."""
    return {"cls": 1.0, "reco": 1.0, "adv": 1.0, "mme": config.lambda_mme}


def train_repetitions(
    data: DomainTensors,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
    on_epoch: EpochCallback | None = None,
) -> list[RepetitionResult]:
    """Train one SSDA model per (split, seed) together and keep each one's best-epoch weights."""
    device = data.source_x.device
    spec = METHOD_SPECS[config.method]
    members = [
        MemberDraws(data.source_y, split, config, seed) for split, seed in zip(splits, seeds, strict=True)
    ]
    net = SSDAEnsemble.seeded(data.source_x.shape[1], config, seeds, [m.dropout for m in members], device)
    target_y = torch.as_tensor(np.nan_to_num(data.target_y, nan=-1), dtype=torch.long, device=device)
    uses = (spec.source, spec.shots, spec.unlabeled and len(splits[0].unlabeled) > 0)
    weights = term_weights(config)
    no_term = torch.zeros(len(members), device=device)
    declared = spec.source_weight if spec.source and spec.shots else None
    trust: list[BulkTrust] = []
    source_weight: float | torch.Tensor | None
    if isinstance(declared, str):  # "auto": each repetition's own weight
        axes = main_axes(data.target_x)
        trust = [
            bulk_trust(data.source_x, data.source_y, data.target_x, data.target_y, s, axes) for s in splits
        ]
        source_weight = torch.tensor([t.weight for t in trust], device=device)
    else:
        source_weight = declared

    def weighted(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if source_weight is None:
            return member_cross_entropy(logits, labels)
        return per_domain_cross_entropy(logits, labels, config.batch_size, source_weight)

    cross_entropy = {  # the two terms that read the labels
        term: weighted if term in spec.weighted_terms else member_cross_entropy for term in ("cls", "adv")
    }

    def step_losses(batches: EpochBatches, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        labeled_x, labeled_y = [], []
        if batches.source is not None:
            labeled_x.append(member_rows(data.source_x, batches.source[:, step]))
            labeled_y.append(data.source_y[batches.source[:, step]])
        if batches.shots is not None:
            labeled_x.append(member_rows(data.target_x, batches.shots[:, step]))
            labeled_y.append(target_y[batches.shots[:, step]])
        n_labeled = sum(part.shape[1] for part in labeled_x)
        unlabeled = (
            [member_rows(data.target_x, batches.unlabeled[:, step])] if batches.unlabeled is not None else []
        )
        clean = torch.cat(labeled_x + unlabeled, 1)
        labels = torch.cat(labeled_y, dim=1)
        noisy = mask_members(clean, config.noise_rate, [m.masks for m in members])
        latent = net.encoder(noisy)
        features = net.predictor(latent)
        compute = {
            "cls": lambda: cross_entropy["cls"](net.classifier(features[:, :n_labeled]), labels),
            "reco": lambda: reconstruction_loss(net, clean, latent),
            "adv": lambda: adversarial_loss(
                net, noisy[:, :n_labeled], labels, config.epsilon, cross_entropy["adv"]
            ),
            "mme": lambda: (
                minimax_entropy_loss(net, features[:, n_labeled:], config.eta) if unlabeled else no_term
            ),
        }
        losses = {name: compute[name]() if name in spec.terms else no_term for name in LOSS_TERMS}
        total = sum(weights[name] * losses[name] for name in spec.terms)
        return torch.stack([losses[name] for name in LOSS_TERMS]), cast(torch.Tensor, total).sum()

    results = fit_members(
        net,
        make_optimizer(config, list(net.parameters())),
        step_losses,
        net.sensitivity,
        tuple(f"loss_{name}" for name in LOSS_TERMS),
        members,
        data,
        splits,
        seeds,
        config,
        net.member_state_dict,
        uses,
        on_epoch=on_epoch,
        last_at_chance=spec.last_at_chance,
    )
    if trust:  # ssda_auto's choice, beside each repetition
        for result, chosen in zip(results, trust, strict=True):
            result.bulk_trust = chosen
    return results


def train_in_ensembles(
    data: DomainTensors,
    splits: list[RepetitionSplit],
    seeds: list[int],
    config: SSDAConfig,
    on_epoch: EpochCallback | None = None,
) -> list[RepetitionResult]:
    """`train_repetitions` over all (split, seed) pairs, `ensemble_size` of them at a time; for
    the blend, each member method's in turn on the same pairs, joined per repetition."""
    members = member_methods(config.method)

    def train(member: str) -> list[RepetitionResult]:
        callback = None if on_epoch is None else _renamed(on_epoch, member, first=member == members[0])
        return in_ensembles(
            lambda s, r: train_repetitions(data, s, r, config.replace(method=member), callback),
            data.source_x.shape[1],
            splits,
            seeds,
            config,
        )

    trained = [train(member) for member in members]
    if len(members) == 1:
        return trained[0]
    return [_joined(config.method, members, list(parts)) for parts in zip(*trained, strict=True)]


def member_record(member: str, record: dict[str, float], first: bool) -> dict[str, float]:
    """A blend member's epoch record as the blend logs it: the first member's (the bulk's) as it
    is, another's keys but the epoch prefixed by its method, so no two members share a name."""
    return record if first else {k if k == "epoch" else f"{member}.{k}": v for k, v in record.items()}


def _renamed(on_epoch: EpochCallback, member: str, first: bool) -> EpochCallback:
    return lambda seed, record: on_epoch(seed, member_record(member, record, first))


def _joined(method: str, members: tuple[str, ...], parts: list[RepetitionResult]) -> RepetitionResult:
    """One repetition of the blend: the members' weights in one state dict, the first member's
    epoch, selection and bulk choice, and every member's per-epoch record side by side."""
    history = [
        {
            k: v
            for m, r in zip(members, records, strict=True)
            for k, v in member_record(m, r, m == members[0]).items()
        }
        for records in zip(*(part.history for part in parts), strict=True)
    ]
    return RepetitionResult(
        state_dict=join_states(method, [part.state_dict for part in parts]),
        best_epoch=parts[0].best_epoch,
        selection=parts[0].selection,
        history=history,
        bulk_trust=parts[0].bulk_trust,
    )
