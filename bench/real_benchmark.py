"""The method comparison on the real public subsets (../shared/data): 3-shot, 20 repetitions.

    .venv/bin/python bench/real_benchmark.py [path/to/shared/data] [--repetitions 20]

Writes bench/results/real_benchmark.csv (every repetition) and prints the summary table quoted
in the README.
"""

import argparse
import warnings
from pathlib import Path

import pandas as pd

from ssda_model.benchmark import ALL_METHODS, run_benchmark, summarize
from ssda_model.config import SSDAConfig
from ssda_model.datasets import PUBLIC_TARGETS, public_scad_pair
from ssda_model.errors import SSDAInputWarning

warnings.filterwarnings("ignore", category=SSDAInputWarning)  # the SCAD and TGSA files are z-scored
parser = argparse.ArgumentParser()
parser.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
parser.add_argument("--repetitions", type=int, default=20)
args = parser.parse_args()
frames = []
for drug in PUBLIC_TARGETS:
    source, target = public_scad_pair(args.data_dir, drug)
    results = run_benchmark(source, target, methods=list(ALL_METHODS), shots=[3], repetitions=args.repetitions,
                            config=SSDAConfig(), progress=True)
    frames.append(results.assign(target=f"{drug} ({target.n_obs} cells)"))
    pd.concat(frames).to_csv(Path(__file__).parent / "results" / "real_benchmark.csv", index=False)
table = pd.concat(frames)
summary = pd.concat([summarize(group).assign(target=name) for name, group in table.groupby("target", sort=False)])
wide = summary.pivot_table(index="method", columns="target", values="mean_auc", sort=False)
print(wide.round(3).to_markdown())
