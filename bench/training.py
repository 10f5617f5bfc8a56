"""Training speed at the paper's shapes: one repetition at a time against the batched ensemble,
fp32 and bf16, with achieved GFLOP/s and its share of this machine's measured GEMM peak.

    .venv/bin/python bench/training.py [--repetitions 10] [--single-repetitions 3] [--epochs 50]

One at a time, a repetition takes the same time whatever R is, so that mode is timed over the
first --single-repetitions repetitions; the batched mode trains all R together. `auc_gap` is the
largest AUC difference between the two modes over the repetitions both trained (same seeds).

Shapes (synthetic pairs): 834 lines × 2,933 genes → 66 cells and 834 × 2,668 → 1,393 cells,
3-shot, batch 32, paper configuration. The reference code's seconds per repetition at these
shapes on the same 2-core machine (issue #7) are quoted for the "× reference" column. Writes
bench/results/training.json and prints a table.
"""

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel

SHAPES = [(834, 2933, 66, 39.0), (834, 2668, 1393, 63.0)]  # lines, genes, cells, reference s per 50-epoch repetition


def gemm_peak(rows: int, genes: int, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """GFLOP/s of the first layer's matmul (rows × genes @ genes × 512) on this machine."""
    a, b = torch.randn(rows, genes, dtype=dtype), torch.randn(genes, 512, dtype=dtype)
    for _ in range(5):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * rows * genes * 512 * n / (time.perf_counter() - start) / 1e9


def step_flops(genes: int, config: SSDAConfig, n_shots: int) -> float:
    """Matmul FLOPs of one training step of one model, counting only the products that run.

    Rows per pass: main = source batch + shots + unlabeled batch; the adversarial probe and the
    perturbed pass see the labeled rows. Every layer multiplies forward in each pass it is in and
    computes weight gradients for the main and perturbed passes; input gradients flow in all three
    passes except into the data through the first layer (the probe does need that one).
    """
    labeled = config.batch_size + n_shots
    main = labeled + config.batch_size
    encoder = list(zip((genes, *config.encoder_dims[:-1]), config.encoder_dims))
    head = [(config.latent_dim, config.predictor_dim), (config.predictor_dim, 2)]
    decoder = [(b, a) for a, b in reversed(encoder)]
    total = 0.0
    for i, (a, b) in enumerate(encoder + head):
        rows = (main + 2 * labeled) + (main + labeled) + labeled + (0 if i == 0 else main + labeled)
        total += 2 * a * b * rows
    for a, b in decoder:
        total += 2 * a * b * 3 * main
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--single-repetitions", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    rows = []
    for n_lines, n_genes, n_cells, reference in SHAPES:
        source, target = synthetic_pair(n_source=n_lines, n_cells=n_cells, n_genes=n_genes, seed=0)
        peaks = {p: gemm_peak(70, n_genes, d) for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        for precision in ("fp32", "bf16"):
            aucs = {}
            for batched, repetitions in ((False, args.single_repetitions), (True, args.repetitions)):
                config = SSDAConfig(epochs=args.epochs, repetitions=repetitions, precision=precision,
                                    device="cpu", batch_repetitions=batched)
                start = time.perf_counter()
                metrics = SSDAModel.fit(source, target, config).metrics
                per_rep = (time.perf_counter() - start) / repetitions
                aucs[batched] = [r["auc"] for r in metrics["repetitions"]]
                steps = -(-int(n_lines * (1 - config.val_fraction)) // config.batch_size) * args.epochs
                achieved = step_flops(n_genes, config, 2 * int(config.shots)) * steps / per_rep / 1e9
                rows.append({"shape": f"{n_lines}x{n_genes}->{n_cells}",
                             "mode": f"{f'batched R={repetitions}' if batched else 'one at a time'} {precision}",
                             "seconds_per_repetition": round(per_rep, 2), "gflops": round(achieved, 1),
                             "gemm_peak_gflops": round(peaks[precision], 1),
                             "fraction_of_peak": round(achieved / peaks[precision], 3),
                             "x_reference": round(reference * args.epochs / 50 / per_rep, 2),
                             "mean_auc": round(metrics["mean_auc"], 4),
                             "auc_gap": round(max(abs(a - b) for a, b in zip(aucs[False], aucs[True])), 6)
                             if batched else None})
                print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(rows, indent=2))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
