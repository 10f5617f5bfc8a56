"""The real-data benchmark of one target, batched against one repetition at a time, side by side.

    .venv/bin/python bench/competitors.py [data_dir] [--target Gefitinib] [--repetitions 20] [--shots 3]
        [--methods scad,ssda,...]

On one real target (GDSC source, `../shared/data`), every method of the real-data benchmark at one
shot count (the ssda family, the baselines and the competitors scad, scdeal, scdeal_nopretrain,
codeae), each trained in its default batched mode and one repetition at a time
(`batch_repetitions=False`), both at the default precision. The last rows add them up: the
competitors, the ssda family and baselines, and the whole benchmark of one target (issue 14's goal:
batched in at most a third of the one-at-a-time time). `auc_gap` is the largest per-repetition AUC
difference between the two modes (same seeds and splits). Run it when nothing else runs: it
measures time.
"""

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from ssda_model.benchmark import run_benchmark
from ssda_model.config import METHODS, SSDAConfig
from ssda_model.datasets import public_scad_pair
from ssda_model.errors import SSDAInputWarning
from ssda_model.train.competitors import COMPETITORS


def timed(source, cells, method: str, args: argparse.Namespace, batched: bool) -> tuple[float, pd.Series]:
    """Seconds of one method's repetitions and their AUCs."""
    started = time.perf_counter()
    rows = run_benchmark(
        source,
        cells,
        methods=[method],
        shots=[args.shots],
        repetitions=args.repetitions,
        config=SSDAConfig(batch_repetitions=batched),
    )
    return time.perf_counter() - started, rows["auc"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--target", default="Gefitinib")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument(
        "--methods",
        type=lambda s: s.split(","),
        default=[*COMPETITORS, *METHODS],
        help="a subset (default: every method of the benchmark)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=SSDAInputWarning)  # both files are z-scored already
    source, cells = public_scad_pair(args.data_dir, args.target, source="gdsc")

    rows = []
    for method in args.methods:
        batched, auc = timed(source, cells, method, args, batched=True)
        alone, auc_alone = timed(source, cells, method, args, batched=False)
        rows.append(
            {
                "method": method,
                "batched_s": batched,
                "one_at_a_time_s": alone,
                "mean_auc": auc.mean(),
                "auc_gap": (auc - auc_alone).abs().max(),
            }
        )
        print(f"{method}: {rows[-1]}", flush=True)
    table = pd.DataFrame(rows).set_index("method")
    seconds = ["batched_s", "one_at_a_time_s"]
    for name, methods in (("the competitors", COMPETITORS), ("the ssda family and baselines", METHODS)):
        timed_here = [m for m in methods if m in args.methods]
        if timed_here:  # a --methods subset may hold none of a group: no empty sum row
            table.loc[name] = table.loc[timed_here, seconds].sum()
    table.loc["benchmark of one target"] = table.loc[args.methods, seconds].sum()
    table["speed-up"] = table["one_at_a_time_s"] / table["batched_s"]
    print(
        f"\n{args.target}, {args.shots} shots, {args.repetitions} repetitions, seconds in one run\n"
        f"{table.round(3).to_markdown()}"
    )


if __name__ == "__main__":
    main()
