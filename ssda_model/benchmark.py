"""The paper's comparison (Fig. 2 and 3) on any data: every method on the same splits and shots.

Repetition r draws its split and shots from seed r alone, and every method trains on that very
split, so the results are paired: the summary's Wilcoxon test of `ssda` against each other method
pairs them by (shots, repetition).
"""

from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ssda_model.config import METHODS, SSDAConfig
from ssda_model.data.prepare import prepare_domains
from ssda_model.data.splits import repetition_split
from ssda_model.memory import check_fits_memory
from ssda_model.metrics import pooled_auc_aupr
from ssda_model.train.blend import member_networks
from ssda_model.train.competitors import COMPETITORS, competitor_scores
from ssda_model.train.device import resolve_device
from ssda_model.train.loop import DomainTensors, deterministic_algorithms, predict_scores
from ssda_model.train.trainer import train_in_ensembles

ALL_METHODS = (*METHODS, *COMPETITORS)
RESULT_COLUMNS = ["method", "shots", "repetition", "seed", "auc", "aupr", "protocol", "n_eval"]


def _method_scores(
    method: str, data: DomainTensors, splits: list, seeds: list[int], config: SSDAConfig
) -> list[np.ndarray]:
    """Each repetition's scores on its evaluation cells (repetition seeds[i] = splits[i]).

    Every method trains its repetitions together as batched ensembles, as `fit` does.
    """
    if method not in METHODS:
        return competitor_scores(method, data, splits, seeds, config)
    config = config.replace(method=method)
    scores = []
    for split, result in zip(splits, train_in_ensembles(data, splits, seeds, config), strict=True):
        nets = member_networks(data.source_x.shape[1], config, result.state_dict, data.source_x.device)
        scores.append(
            np.mean([predict_scores(net, data.target_x[split.target_eval]) for net in nets], axis=0)
        )
    return scores


def run_benchmark(
    source: ad.AnnData,
    target: ad.AnnData,
    *,
    methods: list[str],
    shots: list[int],
    repetitions: int,
    config: SSDAConfig,
    first_repetition: int = 1,
    label_key: str = "response",
    source_name: str = "source",
    target_name: str = "target",
    progress: bool = False,
    on_result: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """One row per (method, shots, repetition): pooled AUC and AUPR on that repetition's evaluation cells.

    Repetitions `first_repetition` .. `first_repetition + repetitions - 1` run, each seeded by its
    number alone, so a run that adds repetitions 11..20 pairs with an earlier one of 1..10."""
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {', '.join(unknown)}; expected some of {', '.join(ALL_METHODS)}")
    domains = prepare_domains(
        source,
        target,
        label_key=label_key,
        shots=max(shots),
        val_fraction=config.val_fraction,
        scaling=config.scaling,
        source_name=source_name,
        target_name=target_name,
    )
    check_fits_memory(
        len(domains.genes),
        len(domains.source_y) + len(domains.target_y),
        config.replace(repetitions=repetitions),
    )
    device = resolve_device(config.device)
    data = DomainTensors.on_device(domains, device)
    rows = []
    bar = tqdm(
        total=len(shots) * repetitions * len(methods), disable=not progress, desc="benchmark", unit="fit"
    )
    seeds = list(range(first_repetition, first_repetition + repetitions))
    try:
        with deterministic_algorithms(device):
            for n_shots in shots:
                splits = [
                    repetition_split(
                        domains.source_y,
                        domains.target_y,
                        n_shots,
                        config.protocol,
                        config.val_fraction,
                        seed=r,
                    )
                    for r in seeds
                ]
                for method in methods:
                    scores = _method_scores(method, data, splits, seeds, config.replace(shots=n_shots))
                    for repetition, split, method_scores in zip(seeds, splits, scores, strict=True):
                        eval_y = domains.target_y[split.target_eval]
                        auc, aupr = pooled_auc_aupr(eval_y, method_scores)
                        row = {
                            "method": method,
                            "shots": n_shots,
                            "repetition": repetition,
                            "seed": repetition,
                            "auc": auc,
                            "aupr": aupr,
                            "protocol": config.protocol,
                            "n_eval": len(eval_y),
                        }
                        rows.append(row)
                        if on_result is not None:
                            on_result(row)
                    bar.update(repetitions)
    finally:
        bar.close()
    order = {method: i for i, method in enumerate(methods)}
    rows.sort(key=lambda row: (row["shots"], row["repetition"], order[str(row["method"])]))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and median per method × shots, and the paired Wilcoxon p-value of ssda against it."""
    summary = (
        results.groupby(["method", "shots"], sort=False)
        .agg(
            mean_auc=("auc", "mean"),
            std_auc=("auc", "std"),
            median_auc=("auc", "median"),
            mean_aupr=("aupr", "mean"),
            std_aupr=("aupr", "std"),
            median_aupr=("aupr", "median"),
            repetitions=("auc", "size"),
        )
        .reset_index()
    )
    summary["wilcoxon_p_vs_ssda"] = [
        paired_wilcoxon(results[results["shots"] == shots], method, "ssda")
        for method, shots in zip(summary["method"], summary["shots"], strict=True)
    ]
    return summary


def paired_wilcoxon(results: pd.DataFrame, method: str, against: str) -> float:
    """Two-sided Wilcoxon signed-rank p of `against` − `method` AUC over the repetitions of
    `results` (one shot count) that both ran; NaN when fewer than two pairs differ."""
    pivot = results.pivot_table(index="repetition", columns="method", values="auc")
    if method == against or against not in pivot or method not in pivot:
        return float("nan")
    differences = (pivot[against] - pivot[method]).dropna()
    if len(differences) < 2 or np.allclose(differences, 0):
        return float("nan")
    return float(stats.wilcoxon(differences).pvalue)
