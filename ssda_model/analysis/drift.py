"""How the predicted response moves over ordered time points (paper Fig. 4–5)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

RESISTANT_BELOW = 0.5  # a cell is predicted resistant when P(sensitive) < 0.5


def percent_resistant_ci(
    scores: np.ndarray, rng: np.random.Generator, n_boot: int = 1000
) -> tuple[float, float, float]:
    """% predicted resistant and its 95 % bootstrap interval. A resample of n cells with replacement
    holds Binomial(n, share resistant) resistant cells, so each resample is one binomial draw: the
    same distribution as drawing the cells, in memory that does not grow with them (the cells'
    draws took 4 GB at 10^6 cells)."""
    resistant = scores < RESISTANT_BELOW
    n, share = len(resistant), float(resistant.mean())
    boot = rng.binomial(n, share, size=n_boot) / n * 100
    return share * 100, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def per_time_point(scores: pd.Series, times: pd.Series, order: list[str], seed: int = 0) -> pd.DataFrame:
    """Per time point present, in `order`: cells, mean and median P(sensitive), % resistant with its
    95 % bootstrap interval (`seed` fixes the resamples)."""
    rng = np.random.default_rng(seed)
    rows = []
    for point in order:
        s = scores[times == point].to_numpy()
        if len(s) == 0:
            continue
        pct, low, high = percent_resistant_ci(s, rng)
        rows.append(
            {
                "time_point": point,
                "n_cells": len(s),
                "mean_score": float(s.mean()),
                "median_score": float(np.median(s)),
                "pct_resistant": pct,
                "pct_resistant_low": low,
                "pct_resistant_high": high,
            }
        )
    return pd.DataFrame(rows)


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """From a to b: signed Wasserstein-1 drift, change in % resistant and Fisher's exact p-value."""
    drift = stats.wasserstein_distance(a, b) * np.sign(b.mean() - a.mean())
    ra, rb = int((a < RESISTANT_BELOW).sum()), int((b < RESISTANT_BELOW).sum())
    _, p = stats.fisher_exact([[ra, len(a) - ra], [rb, len(b) - rb]])
    return {
        "drift_w1": float(drift),
        "delta_pct_resistant": 100 * (rb / len(b) - ra / len(a)),
        "p_value": float(p),
    }


def consecutive_drift(scores: pd.Series, times: pd.Series, order: list[str]) -> pd.DataFrame:
    """`compare` between each time point present and the next one in `order`."""
    present = [t for t in order if (times == t).any()]
    rows = [
        {"from": a, "to": b, **compare(scores[times == a].to_numpy(), scores[times == b].to_numpy())}
        for a, b in zip(present, present[1:], strict=False)
    ]
    return pd.DataFrame(rows)


def trend(scores: pd.Series, times: pd.Series, order: list[str]) -> dict[str, float]:
    """Kendall τ of the resistance score (1 − P(sensitive)) against time-point rank:
    positive when cells grow more resistant along the declared order."""
    rank = times.map({t: i for i, t in enumerate(order)}).to_numpy(dtype=float)
    tau, p = stats.kendalltau(rank, 1.0 - scores.to_numpy())
    return {"kendall_tau": float(tau), "p_value": float(p)}


def contrast(scores: pd.Series, times: pd.Series, a: str, b: str) -> dict[str, float]:
    """% sensitive at a minus % sensitive at b, with Fisher's exact p-value (the paper's '+22.8 %')."""
    result = compare(scores[times == b].to_numpy(), scores[times == a].to_numpy())
    return {"delta_pct_sensitive": -result["delta_pct_resistant"], "p_value": result["p_value"]}


@dataclass
class DriftReport:
    """Everything the temporal-drift analysis finds, and the one long table that stores it
    (kind = time_point | step | trend | contrast)."""

    per_point: pd.DataFrame
    steps: pd.DataFrame
    trend: dict[str, float]
    contrasts: dict[str, dict]
    table: pd.DataFrame


def drift_report(
    scores: pd.Series, times: pd.Series, order: list[str], contrasts: list[tuple[str, str, str]]
) -> DriftReport:
    """Per time point, between consecutive points, over the whole order, and for each named
    (name, a, b) contrast; `scores` are P(sensitive) per cell, `times` its time point."""
    per_point = per_time_point(scores, times, order)
    steps = consecutive_drift(scores, times, order)
    overall = trend(scores, times, order)
    named = {name: {**contrast(scores, times, a, b), "a": a, "b": b} for name, a, b in contrasts}
    rows = [{"kind": "time_point", "name": r.pop("time_point"), **r} for r in per_point.to_dict("records")]
    rows += [
        {
            "kind": "step",
            "name": f"{r['from']}→{r['to']}",
            "drift_w1": r["drift_w1"],
            "delta_pct": r["delta_pct_resistant"],
            "p_value": r["p_value"],
        }
        for r in steps.to_dict("records")
    ]
    rows.append(
        {
            "kind": "trend",
            "name": "kendall_tau",
            "statistic": overall["kendall_tau"],
            "p_value": overall["p_value"],
        }
    )
    rows += [
        {
            "kind": "contrast",
            "name": f"{n}: {c['a']} vs {c['b']}",
            "delta_pct": c["delta_pct_sensitive"],
            "p_value": c["p_value"],
        }
        for n, c in named.items()
    ]
    return DriftReport(per_point, steps, overall, named, pd.DataFrame(rows))
