"""One real-size dataset through its task's whole chain, timed per asset, with the peak memory.

    python bench/scale.py [--cells 20000,100000] [--genes 20000] [--format h5ad|10x]

For each size: a fresh DAGSTER_HOME with the demo raw zone, plus a generated dataset of that many
cells (`ssda_assets.raw.demo_scale`: resampled demo cells padded with filler genes to ~9 % nonzero).
A child process then materializes, one asset at a time as the UI would: ingest and QC
(`sc_dataset`), `harmonized_expression` + `target_dataset`, `trained_model` with the defaults,
`cell_predictions`, `temporal_drift`, `resistance_markers`, `attribution_report`, `latent_map`.
The table gives seconds per step with the child's peak RSS so far (VmHWM: the pipeline process
alone, the generator runs in this one), so the step that raised the peak shows. Goals (issue 26):
100,000 cells in ≤ 10 min and ≤ 4 GB; 1,000,000 in ≤ 60 min and ≤ 6 GB. Run it when nothing else
runs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASET = "scale_bortezomib"
CHAIN = r"""
import json, re, sys, time
from pathlib import Path
import dagster as dg
from ssda_assets.raw.catalog import register_partitions
from ssda_assets.definitions import defs
from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env

paths = paths_from_env()
resources = {"paths": paths, "warehouse": warehouse_from_env(), "mlflow_tracking": mlflow_from_env()}
instance = dg.DagsterInstance.get()
register_partitions(instance, paths.raw)
definitions = defs()
task = dg.MultiPartitionKey({"drug": "bortezomib", "dataset": sys.argv[1]})
steps = [
    ("gdsc", ["gdsc_expression", "gdsc_response"], None),
    ("gdsc_labels", ["gdsc_labels"], "bortezomib"),
    ("sc_dataset (ingest, QC)", ["sc_dataset"], sys.argv[1]),
    ("harmonize + target_dataset", ["harmonized_expression", "target_dataset"], task),
    ("trained_model", ["trained_model"], task),
    ("cell_predictions", ["cell_predictions"], task),
    ("temporal_drift", ["temporal_drift"], task),
    ("resistance_markers", ["resistance_markers"], task),
    ("attribution_report", ["attribution_report"], task),
    ("latent_map", ["latent_map"], task),
]
times = {}
for title, names, key in steps:
    started = time.perf_counter()
    dg.materialize([definitions.get_assets_def(n) for n in names], instance=instance,
                   partition_key=key, resources=resources)
    status = Path("/proc/self/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 2**20
    times[title] = f"{time.perf_counter() - started:.1f} s, {peak:.2f} GiB"
print(json.dumps(times))
"""


def run_chain(cells: int, genes: int, fmt: str) -> dict:
    from ssda_assets.raw.demo_raw import write_demo_raw
    from ssda_assets.raw.demo_scale import write_scaled_dataset

    home = Path(tempfile.mkdtemp(prefix="ssda-scale-"))
    raw = home / "data" / "raw"
    write_demo_raw(raw)
    for demo in ("jhu006_gefitinib", "pc9_erlotinib"):  # the chain of one dataset, not the demo's
        for path in sorted((raw / "datasets" / demo).rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        (raw / "datasets" / demo).rmdir()
    started = time.perf_counter()
    folder = write_scaled_dataset(raw, DATASET, cells, genes, fmt=fmt)
    generated = time.perf_counter() - started
    size = sum(f.stat().st_size for f in folder.rglob("*")) / 2**30
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    started = time.perf_counter()
    try:  # a home holds about 2.3x the input: the raw matrix, sc_dataset, target.parquet
        command = [sys.executable, "-c", CHAIN, DATASET]
        child = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"the chain failed at {cells:,} cells; its last lines:\n{child.stderr[-4000:]}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    total = time.perf_counter() - started
    steps = json.loads(child.stdout.strip().splitlines()[-1])
    return {
        "cells": cells,
        "genes": genes,
        "format": fmt,
        "input GiB": round(size, 2),
        "generate s": round(generated, 1),
        **steps,
        "chain s": round(total, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", default="20000,100000", help="comma-separated dataset sizes")
    parser.add_argument("--genes", type=int, default=20_000, help="genes per dataset (filler above 2,000)")
    parser.add_argument("--format", default="h5ad", choices=["h5ad", "10x"], help="the dataset's format")
    args = parser.parse_args()
    rows = [run_chain(int(n), args.genes, args.format) for n in args.cells.split(",")]
    print(pd.DataFrame(rows).set_index("cells").T.to_markdown())


if __name__ == "__main__":
    main()
