"""Training speed at the paper's shapes: seconds per repetition, achieved GFLOP/s and its share of
this machine's measured GEMM peak, fp32 and bf16, one repetition at a time.

    .venv/bin/python bench/training.py [--repetitions 10] [--epochs 50]

Shapes (synthetic pairs): 834 lines × 2,933 genes → 66 cells and 834 × 2,668 → 1,393 cells,
3-shot, batch 32, paper configuration. Writes bench/results/training.json and prints a table.
(Batched repetitions are not implemented yet, so only the one-at-a-time mode is measured.)
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

SHAPES = [(834, 2933, 66), (834, 2668, 1393)]


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


def training_flops(genes: int, config: SSDAConfig, steps: int) -> float:
    """Matmul FLOPs of training: forward + backward (≈ 3× forward) for every row of every pass."""
    dims = (genes, *config.encoder_dims)
    encoder = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    decoder = encoder  # mirrored
    head = config.latent_dim * config.predictor_dim + config.predictor_dim * 2
    batch = config.batch_size
    labeled = batch + 6
    main = (2 * batch + 6) * (encoder + decoder + head)
    adversarial = 2 * labeled * (encoder + head)  # the probe pass and the perturbed pass
    return 3 * 2 * (main + adversarial) * steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    rows = []
    for n_lines, n_genes, n_cells in SHAPES:
        source, target = synthetic_pair(n_source=n_lines, n_cells=n_cells, n_genes=n_genes, seed=0)
        peaks = {p: gemm_peak(70, n_genes, d) for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        for precision in ("fp32", "bf16"):
            config = SSDAConfig(epochs=args.epochs, repetitions=args.repetitions, precision=precision, device="cpu")
            start = time.perf_counter()
            metrics = SSDAModel.fit(source, target, config).metrics
            per_rep = (time.perf_counter() - start) / args.repetitions
            steps = -(-int(n_lines * (1 - config.val_fraction)) // config.batch_size) * args.epochs
            achieved = training_flops(n_genes, config, steps) / per_rep / 1e9
            rows.append({"shape": f"{n_lines}x{n_genes}->{n_cells}", "mode": f"one-at-a-time {precision}",
                         "seconds_per_repetition": round(per_rep, 2), "gflops": round(achieved, 1),
                         "gemm_peak_gflops": round(peaks[precision], 1),
                         "fraction_of_peak": round(achieved / peaks[precision], 3),
                         "mean_auc": round(metrics["mean_auc"], 3)})
            print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(rows, indent=2))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
