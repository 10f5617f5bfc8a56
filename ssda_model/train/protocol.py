"""The paper's evaluation protocol: R independent repetitions, pooled AUC/AUPR, mean ± std."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np
import torch
from tqdm.auto import tqdm

from ssda_model.config import Method, Protocol, Scaling, SSDAConfig
from ssda_model.data.prepare import PreparedDomains
from ssda_model.data.splits import RepetitionSplit, repetition_split
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.threads import share_cores
from ssda_model.train.blend import member_methods, member_networks
from ssda_model.train.device import resolve_device, resolve_precision
from ssda_model.train.loop import DomainTensors, RepetitionResult, deterministic_algorithms, predict_scores
from ssda_model.train.trainer import train_in_ensembles

RepetitionCallback = Callable[[int, dict[str, float]], None]
Evaluation = Literal["target", "source_validation"]

SHOTS_ALL_NOTE = (
    "shots=all uses every labeled target cell for training, so no target cell is left to "
    "evaluate on; AUC/AUPR are on the source validation split"
)


class RepetitionMetrics(TypedDict):
    """One repetition's entry of ``metrics["repetitions"]``.

    ``auc`` and ``aupr`` are pooled over the repetition's ``n_eval`` evaluation cells (NaN when
    they hold one class only); ``best_epoch`` is the kept epoch (1-based) and ``selection`` which
    labels chose it (``"target_val"`` or ``"source_val"``; ``"last_epoch"`` when ``ssda_auto``
    scored the source-val labels at chance in every epoch, so they chose nothing); ``n_shots``
    and ``n_unlabeled`` count the target cells trained on with and without their label.
    ``bulk_agreement`` and ``bulk_weight`` are what ``ssda_auto`` (alone or as the bulk's member
    of ``ssda_blend``) read from the shots and chose for the bulk (`ssda_model.train.bulk_trust`);
    None for the other methods. ``member_auc``: for ``ssda_blend``, the AUC of each member's
    network alone on the same cells (``ssda_auto``, ``target_only``); None for the other methods.
    For the blend, ``best_epoch`` and ``selection`` are the bulk member's.
    """

    repetition: int
    seed: int
    auc: float
    aupr: float
    n_eval: int
    best_epoch: int
    selection: str
    n_shots: int
    n_unlabeled: int
    bulk_agreement: float | None
    bulk_weight: float | None
    member_auc: dict[str, float] | None


class _RequiredFitMetrics(TypedDict):
    method: Method
    shots: int | Literal["all"]
    protocol: Protocol
    evaluation: Evaluation
    repetitions: list[RepetitionMetrics]
    mean_auc: float | None
    std_auc: float | None
    mean_aupr: float | None
    std_aupr: float | None
    n_genes: int
    n_source: int
    n_target: int
    device: str
    precision: str
    scaling: Scaling
    mean_bulk_weight: float | None
    mean_member_auc: dict[str, float | None] | None


class FitMetrics(_RequiredFitMetrics, total=False):
    """The metrics of a fit, as ``SSDAModel.metrics`` holds them and ``metrics.json`` stores them.

    The means and standard deviations are over the repetitions with a finite score (None when
    none has one); ``evaluation`` says which cells were scored: ``target`` (the target cells
    that were neither shots nor selection labels) or ``source_validation`` (shots = "all", no
    target label left; ``note``, the one optional key, then says so). Counts are of genes shared
    by both domains and of labeled cells; ``device`` and ``precision`` are those the fit ran with;
    ``mean_bulk_weight`` is the bulk weight ``ssda_auto`` chose, over the repetitions (None for
    the methods without that choice); ``mean_member_auc`` each ``ssda_blend`` member's mean AUC
    alone (None for the other methods).
    """

    note: str


@dataclass
class ProtocolResult:
    """Best-epoch weights of every repetition and the metrics.json content."""

    state_dicts: list[dict[str, torch.Tensor]]
    metrics: FitMetrics
    histories: list[list[dict[str, float]]]
    seconds: dict[str, float]  # wall time of "train" and "score", for `ssda fit`'s timing line


def _summary(values: list[float]) -> tuple[float | None, float | None]:
    finite = [v for v in values if v == v]
    if not finite:
        return None, None
    return float(np.mean(finite)), float(np.std(finite))


def run_protocol(
    domains: PreparedDomains,
    config: SSDAConfig,
    *,
    on_epoch: RepetitionCallback | None = None,
    progress: bool = False,
) -> ProtocolResult:
    """Train repetitions r = 1..R, each seeded by r alone, and score its evaluation cells.

    Parameters
    ----------
    domains
        Both domains on their shared genes, z-scored (`prepare_domains`).
    config
        Method, shots, protocol, repetitions and the network's hyper-parameters.
    on_epoch
        Called as ``on_epoch(repetition, record)`` after every epoch of every repetition.
    progress
        A tqdm bar over repetitions × epochs on stderr.

    Returns
    -------
    Each repetition's best-epoch weights (on the CPU), per-epoch histories, and ``metrics``
    (`FitMetrics`): per repetition AUC / AUPR / best epoch / which labels chose it, their mean and
    std, the method, shots, protocol, ``evaluation`` (``target``, or ``source_validation`` with
    shots = "all", when no target label is left to evaluate on), gene and cell counts, device and
    precision.
    """
    device = resolve_device(config.device)
    data = DomainTensors.on_device(domains, device)
    evaluation: Evaluation = "source_validation" if config.shots == "all" else "target"
    repetitions = list(range(1, config.repetitions + 1))
    splits = [
        repetition_split(
            domains.source_y, domains.target_y, config.shots, config.protocol, config.val_fraction, seed=r
        )
        for r in repetitions
    ]
    start = time.perf_counter()
    results = _train_repetitions(data, splits, repetitions, config, on_epoch, progress)
    trained = time.perf_counter()
    rows = _score_repetitions(domains, data, splits, repetitions, results, config, evaluation)
    states = [{k: v.detach().cpu() for k, v in result.state_dict.items()} for result in results]
    histories = [result.history for result in results]
    metrics = _fit_metrics(domains, config, evaluation, rows, device)
    seconds = {"train": trained - start, "score": time.perf_counter() - trained}
    return ProtocolResult(state_dicts=states, metrics=metrics, histories=histories, seconds=seconds)


def _train_repetitions(
    data: DomainTensors,
    splits: list[RepetitionSplit],
    repetitions: list[int],
    config: SSDAConfig,
    on_epoch: RepetitionCallback | None,
    progress: bool,
) -> list[RepetitionResult]:
    """Every repetition trained (as stacked ensembles) on a share of the cores, with deterministic
    kernels; the progress bar and `on_epoch` hear of each epoch, and the core share is rebalanced."""
    bar = tqdm(
        total=config.repetitions * config.epochs * len(member_methods(config.method)),
        disable=not progress,
        desc=config.method,
        unit="epoch",
    )

    def epoch_done(repetition: int, record: dict[str, float]) -> None:
        bar.update(1)
        cores.rebalance()
        if on_epoch is not None:
            on_epoch(repetition, record)

    try:
        with share_cores() as cores, deterministic_algorithms(data.source_x.device):
            return train_in_ensembles(data, splits, repetitions, config, on_epoch=epoch_done)
    finally:
        bar.close()


def _score_repetitions(
    domains: PreparedDomains,
    data: DomainTensors,
    splits: list[RepetitionSplit],
    repetitions: list[int],
    results: list[RepetitionResult],
    config: SSDAConfig,
    evaluation: Evaluation,
) -> list[RepetitionMetrics]:
    """Each repetition's best-epoch network scored alone on its evaluation cells: the target cells
    it never trained or selected on, or (shots = "all") its source validation split. For the
    blend, the mean of its members' P(sensitive), and each member's AUC alone beside it."""
    members = member_methods(config.method)
    rows: list[RepetitionMetrics] = []
    for repetition, split, result in zip(repetitions, splits, results, strict=True):
        nets = member_networks(domains.source_x.shape[1], config, result.state_dict, data.source_x.device)
        if evaluation == "target":
            eval_x, eval_y = data.target_x[split.target_eval], domains.target_y[split.target_eval]
        else:
            eval_x, eval_y = data.source_x[split.source_val], domains.source_y[split.source_val]
        scores = [predict_scores(net, eval_x) for net in nets]
        auc, aupr = pooled_auc_aupr(eval_y, np.mean(scores, axis=0))
        alone = {m: pooled_auc_aupr(eval_y, s)[0] for m, s in zip(members, scores, strict=True)}
        rows.append(
            {
                "repetition": repetition,
                "seed": repetition,
                "auc": auc,
                "aupr": aupr,
                "n_eval": int(len(eval_y)),
                "best_epoch": result.best_epoch,
                "selection": result.selection,
                "n_shots": int(len(split.shots)),
                "n_unlabeled": int(len(split.unlabeled)),
                "bulk_agreement": None if result.bulk_trust is None else result.bulk_trust.agreement,
                "bulk_weight": None if result.bulk_trust is None else result.bulk_trust.weight,
                "member_auc": alone if len(members) > 1 else None,
            }
        )
    return rows


def flat_repetitions(rows: list[RepetitionMetrics]) -> list[dict]:
    """The repetitions' rows for a table: a blend's ``member_auc`` as one ``auc_<member>`` column
    per member."""
    return [
        {
            **{k: v for k, v in row.items() if k != "member_auc"},
            **{f"auc_{m}": auc for m, auc in (row.get("member_auc") or {}).items()},
        }
        for row in rows
    ]


def _member_means(rows: list[RepetitionMetrics]) -> dict[str, float | None] | None:
    """Each blend member's mean AUC alone over the repetitions (None unless the method blends)."""
    alone = [r["member_auc"] for r in rows if r["member_auc"] is not None]
    if not alone:
        return None
    return {member: _summary([a[member] for a in alone])[0] for member in alone[0]}


def _fit_metrics(
    domains: PreparedDomains,
    config: SSDAConfig,
    evaluation: Evaluation,
    rows: list[RepetitionMetrics],
    device: torch.device,
) -> FitMetrics:
    """The repetitions' rows, their mean ± std, and what the fit ran on (metrics.json)."""
    mean_auc, std_auc = _summary([r["auc"] for r in rows])
    mean_aupr, std_aupr = _summary([r["aupr"] for r in rows])
    metrics: FitMetrics = {
        "method": config.method,
        "shots": config.shots,
        "protocol": config.protocol,
        "evaluation": evaluation,
        "repetitions": rows,
        "mean_auc": mean_auc,
        "std_auc": std_auc,
        "mean_aupr": mean_aupr,
        "std_aupr": std_aupr,
        "n_genes": len(domains.genes),
        "n_source": int(len(domains.source_y)),
        "n_target": int(len(domains.target_y)),
        "device": str(device),
        "precision": resolve_precision(config.precision, device),
        "scaling": config.scaling,
        "mean_bulk_weight": _summary([r["bulk_weight"] for r in rows if r["bulk_weight"] is not None])[0],
        "mean_member_auc": _member_means(rows),
    }
    if evaluation == "source_validation":
        metrics["note"] = SHOTS_ALL_NOTE
    return metrics
