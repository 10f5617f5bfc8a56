"""Two trainings at once against one after the other (issue 13: at most 1.2×).

    python bench/threads.py [--epochs 10] [--genes 2000] [--cells 400]

Each training is its own process (as Dagster's parallel steps are), fitting the synthetic pair at
the demo's size. "shared" is the default behaviour (cores split between live claimants, idle
OpenMP threads spin briefly, then sleep); "shared, sleeping at once" is the default until issue 31
(`OMP_WAIT_POLICY=PASSIVE`); "unshared" is the behaviour before issue 13 (every process takes every
core, OpenMP's default wait policy). "one after the other" is two lone trainings, so it shows what
each mode costs a training that has the cores to itself. Run it on an otherwise quiet machine: it
measures contention.
"""

import argparse
import os
import subprocess
import sys
import time

from ssda_model import OPENMP_DEFAULTS, OPENMP_WAIT_SETTINGS
from ssda_model.threads import THREADS_ENV, available_cores

FIT = """
import sys
import torch  # before ssda_model: OpenMP's wait policy is then the one this process was given
from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel
epochs, genes, cells = map(int, sys.argv[1:4])
source, target = synthetic_pair(n_source=300, n_cells=cells, n_genes=genes, seed=0)
SSDAModel.fit(source, target, SSDAConfig(epochs=epochs, repetitions=5))
"""


def _trainings(count: int, args: argparse.Namespace, env: dict[str, str]) -> float:
    """Seconds for `count` trainings started together."""
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIT, str(args.epochs), str(args.genes), str(args.cells)], env=env
        )
        for _ in range(count)
    ]
    if any(p.wait() for p in processes):
        raise SystemExit("a training failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--cells", type=int, default=400)
    args = parser.parse_args()
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OMP_NUM_THREADS", "MKL_NUM_THREADS", *OPENMP_WAIT_SETTINGS, THREADS_ENV}
    }
    modes = {
        "shared": {**base, **OPENMP_DEFAULTS},
        "shared, sleeping at once": {**base, "OMP_WAIT_POLICY": "PASSIVE"},
        "unshared": {**base, THREADS_ENV: str(available_cores())},
    }
    print(
        f"{available_cores()} cores; 5 repetitions × {args.epochs} epochs, {args.genes} genes, "
        f"{args.cells} cells\n"
    )
    print("| mode | one after the other (s) | two at once (s) | at once ÷ one after the other |")
    print("|---|---:|---:|---:|")
    for mode, env in modes.items():
        one = _trainings(1, args, env)
        sequential = one + _trainings(1, args, env)
        together = _trainings(2, args, env)
        print(f"| {mode} | {sequential:.1f} | {together:.1f} | {together / sequential:.2f} |", flush=True)


if __name__ == "__main__":
    main()
