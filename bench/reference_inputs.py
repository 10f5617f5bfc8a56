"""Which input makes the authors' `experiment_shot.py` slower per repetition: the same script on
variants of the Gefitinib-shaped inputs, one variant changed at a time, in one run.

    .venv/bin/python bench/reference_inputs.py --reference DIR [--repetitions 1] [--epochs 50]
        [--data ../shared/data]

Variants: the bench's synthetic pair (834 lines × 2,933 genes → 66 cells); the same with fewer
source lines (580); with the real JHU006 cells of SCAD's Gefitinib file in place of the synthetic
ones (the same 2,933 genes, which the reference hard-codes for this drug; needs --data); and the
bench's pair run without OMP_NUM_THREADS / MKL_NUM_THREADS in the environment, as a user types
the command; and the bench's pair with OMP_WAIT_POLICY=PASSIVE, which the reference inherited
from the bench process until issue 31 (importing ssda_model set it then). Prints seconds per
repetition and its phases (`bench/end_to_end.py`), and writes bench/results/reference_inputs.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from end_to_end import reference_copy, run_reference, synthetic_domains, write_inputs

from ssda_model.datasets import read_scad_tsv

GEFITINIB = "Target_expr_resp_z.Gefitinib_tp4k.tsv"


def variants(data: Path | None) -> dict[str, tuple]:
    """name → (source x, source y, target x, target y, genes), each differing from the first in one way."""
    domains = synthetic_domains(834, 2933, 66)
    base = (domains.source_x, domains.source_y, domains.target_x, domains.target_y, domains.genes)
    keep = np.random.default_rng(0).choice(834, 580, replace=False)
    found = {"synthetic, 834 lines": base, "synthetic, 580 lines": (base[0][keep], base[1][keep], *base[2:])}
    if data is not None:
        cells = read_scad_tsv(data / "scad_sc_targets_tp4k" / GEFITINIB)
        x, y = np.asarray(cells.X, dtype=np.float32), cells.obs["response"].to_numpy()
        found["real JHU006 cells, 834 lines"] = (base[0], base[1], x, y, base[4])
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=Path, required=True, help="checkout of hliulab/SSDA4Drug")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    data = args.data if (args.data / "scad_sc_targets_tp4k" / GEFITINIB).exists() else None
    runs = [(name, inputs, True, {}) for name, inputs in variants(data).items()]
    runs.append(("synthetic, 834 lines, no OMP_NUM_THREADS", runs[0][1], False, {}))
    runs.append(
        ("synthetic, 834 lines, OMP_WAIT_POLICY=PASSIVE", runs[0][1], True, {"OMP_WAIT_POLICY": "PASSIVE"})
    )
    rows = []
    for name, (sx, sy, tx, ty, genes), thread_env, extra_env in runs:
        with tempfile.TemporaryDirectory() as work:
            folder = Path(work)
            write_inputs(folder, "Gefitinib", (sx, sy), (tx, ty), genes)
            reference_copy(args.reference, folder, args.repetitions)
            run = run_reference(
                folder, "Gefitinib", args.epochs, args.threads if thread_env else None, extra_env
            )
        n = run.pop("repetitions")
        rows.append(
            {
                "input": name,
                "lines": len(sy),
                "cells": len(ty),
                "repetitions": n,
                **{k: round(v / n, 2) if k != "start-up" else round(v, 2) for k, v in run.items()},
            }
        )
        print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results" / "reference_inputs.json"
    out.write_text(json.dumps(rows, indent=2))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
