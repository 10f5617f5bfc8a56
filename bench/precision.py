"""The default precision against fp32 on the three real SCAD targets (GDSC source), paired.

    .venv/bin/python bench/precision.py [data_dir] [--repetitions 10] [--shots 3] [--method ssda_prior]

`auto` trains in bf16 where the CPU has bf16 units (train/device.py); issue 14 adopts it only if the
mean AUC stays within 0.01 of fp32. Per target: mean AUC in each precision over the same seeds and
splits, their difference and the largest per-repetition difference. The synthetic pair's check is
a slow test (tests/model/test_method.py).
"""

import argparse
import warnings
from pathlib import Path

import pandas as pd
import torch

from ssda_model.benchmark import run_benchmark
from ssda_model.config import SSDAConfig
from ssda_model.datasets import PUBLIC_TARGETS, public_scad_pair
from ssda_model.errors import SSDAInputWarning
from ssda_model.train.device import resolve_precision


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--method", default=SSDAConfig().method)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=SSDAInputWarning)  # both files are z-scored already
    auto = resolve_precision("auto", torch.device("cpu"))

    rows = []
    for target in PUBLIC_TARGETS:
        source, cells = public_scad_pair(args.data_dir, target, source="gdsc")
        auc = {
            precision: run_benchmark(
                source,
                cells,
                methods=[args.method],
                shots=[args.shots],
                repetitions=args.repetitions,
                config=SSDAConfig(precision=precision),
            )["auc"]
            for precision in ("fp32", "auto")
        }
        rows.append(
            {
                "target": target,
                "fp32": auc["fp32"].mean(),
                f"auto ({auto})": auc["auto"].mean(),
                "mean difference": auc["auto"].mean() - auc["fp32"].mean(),
                "largest per repetition": (auc["auto"] - auc["fp32"]).abs().max(),
            }
        )
        print(rows[-1], flush=True)
    print(
        f"\n{args.method}, {args.shots} shots, {args.repetitions} paired repetitions, mean AUC\n"
        f"{pd.DataFrame(rows).round(4).to_markdown(index=False)}"
    )


if __name__ == "__main__":
    main()
