"""Training speed as a user meets it: `ssda fit` beside the authors' reference code, in one run.

    .venv/bin/python bench/training.py [--reference DIR] [--shapes gefitinib,etoposide] [--runs 2]
        [--fit-repetitions 5] [--reference-repetitions 3] [--repetitions 10]
        [--single-repetitions 3] [--precisions fp32,bf16] [--epochs 50] [--threads 2]
        [--device cpu|cuda] [--fit-methods ssda_blend,ssda_auto] [--skip-training-only]
        [--results training.json]

End to end (with --reference DIR, a checkout of https://github.com/hliulab/SSDA4Drug that is never
copied into this repository): `ssda fit` with its defaults (but --fit-repetitions and --epochs), and
with `--method M` for each other method of --fit-methods, and the reference's `experiment_shot.py`
(its paper configuration, 3-shot, --reference-repetitions), each as a process on --device (both on
the GPU with cuda; the reference's own word for it is `gpu`), on the same matrices
written in both layouts (`bench/end_to_end.py`), taking turns --runs times. The table gives each
side's seconds per repetition of the whole process (the median run), where they went per repetition
(start-up; reading and preparing; training; scoring and saving; the rest), and "× reference": the
reference's seconds per repetition over ours.

Training only: ours in this process (the paper's method, `ssda`, whose matmuls `step_flops` counts),
one repetition at a time and the batched ensemble of R = --repetitions, in fp32 and bf16, with
achieved GFLOP/s and its share of this machine's GEMM peak measured in the same run; the row
`default` is the batched mode at the precision `auto` picks here. One at a time, a repetition takes
the same time whatever R is, so that mode is timed over --single-repetitions. `auc_gap` is the
largest AUC difference between the two modes over the repetitions both trained (same seeds).
`weight_passes_ms_per_step` times, on tensors the size of all the mode's weights, the passes a step
makes over every weight (the fused optimiser step; in bf16 also the cast of the weights and of their
gradient); `ceiling_fraction_of_peak` is the share of the GEMM peak the mode would reach if its
matmuls ran at that peak and only those passes came on top. "× reference" there divides the
reference's training phase per repetition by ours.

Shapes (synthetic pairs, 3-shot, batch 32, paper configuration): gefitinib 834 lines × 2,933 genes →
66 cells, etoposide 834 × 2,668 → 1,393 cells (the reference knows each drug's gene count). Writes
bench/results/training.json (or --results), with the CPU it ran on and the precision `auto` picks
there, and prints the tables. A CPU without bf16 units is stood in for by capping oneDNN and ATen at
AVX2 for both sides (`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`; `auto` then picks fp32), as
`make test` does for its numerics rerun.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from end_to_end import reference_copy, run_ours, run_reference, synthetic_domains, write_inputs

from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel
from ssda_model.train.device import cpu_has_bf16, resolve_precision
from ssda_model.train.loop import make_optimizer

SHAPES = {"gefitinib": ("Gefitinib", 834, 2933, 66), "etoposide": ("Etoposide", 834, 2668, 1393)}


def gemm_peak(rows: int, genes: int, dtype: torch.dtype, device: torch.device, seconds: float = 2.0) -> float:
    """GFLOP/s of the first layer's matmul (rows × genes @ genes × 512) on this device."""
    a = torch.randn(rows, genes, dtype=dtype, device=device)
    b = torch.randn(genes, 512, dtype=dtype, device=device)
    for _ in range(5):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        n += 10
        if device.type == "cuda":
            torch.cuda.synchronize(device)
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
    encoder = list(zip((genes, *config.encoder_dims[:-1]), config.encoder_dims, strict=True))
    head = [(config.latent_dim, config.predictor_dim), (config.predictor_dim, 2)]
    decoder = [(b, a) for a, b in reversed(encoder)]
    total = 0.0
    for i, (a, b) in enumerate(encoder + head):
        rows = (main + 2 * labeled) + (main + labeled) + labeled + (0 if i == 0 else main + labeled)
        total += 2 * a * b * rows
    for a, b in decoder:
        total += 2 * a * b * 3 * main
    return total


def weight_passes(n_weights: int, precision: str, device: torch.device, repeats: int = 5) -> float:
    """Seconds per step of the passes over every weight that no faster matmul shortens: the fused
    optimiser step, and in bf16 also the cast of the weights to bf16 and of their gradient back."""
    weight = torch.nn.Parameter(torch.randn(n_weights, device=device))
    weight.grad = torch.randn(n_weights, device=device)
    optimizer = make_optimizer(SSDAConfig(), [weight])
    low = torch.empty(n_weights, dtype=torch.bfloat16, device=device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.step()
        if precision == "bf16":
            low.copy_(weight.detach())
            weight.grad.copy_(low)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def time_ours(key: str, args: argparse.Namespace, reference: float | None) -> list[dict]:
    """Our modes at one shape, timed over the fit's training phase; `reference` is the reference's
    training seconds per repetition from this run's end-to-end runs."""
    _, n_lines, n_genes, n_cells = SHAPES[key]
    source, target = synthetic_pair(n_source=n_lines, n_cells=n_cells, n_genes=n_genes, seed=0)
    device = torch.device(args.device)
    peaks = {
        p: gemm_peak(70, n_genes, d, device) for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    default = resolve_precision("auto", device)
    rows = []
    modes = [(False, args.single_repetitions)] * (args.single_repetitions > 0) + [(True, args.repetitions)]
    for precision in args.precisions.split(","):
        aucs = {}
        for batched, repetitions in modes:
            config = SSDAConfig(
                method="ssda",
                epochs=args.epochs,
                repetitions=repetitions,
                precision=precision,
                device=args.device,
                batch_repetitions=batched,
            )
            model = SSDAModel.fit(source, target, config)
            per_rep = model.seconds["train"] / repetitions
            metrics = model.metrics
            together = repetitions if batched else 1  # models in one training step
            per_model = sum(p.numel() for p in model.networks("cpu")[0].parameters())
            passes = weight_passes(per_model * together, precision, device)
            aucs[batched] = [r["auc"] for r in metrics["repetitions"]]
            steps = -(-int(n_lines * (1 - config.val_fraction)) // config.batch_size) * args.epochs
            flops = step_flops(n_genes, config, 2 * int(config.shots))
            achieved = flops * steps / per_rep / 1e9
            # the share of peak if every matmul ran at peak and only the weight passes came on top
            ceiling = flops * together / (flops * together / (peaks[precision] * 1e9) + passes)
            rows.append(
                {
                    "shape": f"{n_lines}x{n_genes}->{n_cells}",
                    "mode": f"{f'batched R={repetitions}' if batched else 'one at a time'} {precision}"
                    + (" (default)" if batched and precision == default else ""),
                    "seconds_per_repetition": round(per_rep, 2),
                    "gflops": round(achieved, 1),
                    "gemm_peak_gflops": round(peaks[precision], 1),
                    "fraction_of_peak": round(achieved / peaks[precision], 3),
                    "weight_passes_ms_per_step": round(passes * 1e3, 1),
                    "ceiling_fraction_of_peak": round(ceiling / 1e9 / peaks[precision], 3),
                    "x_reference": round(reference / per_rep, 2) if reference else None,
                    "mean_auc": round(metrics["mean_auc"], 4),
                    "auc_gap": round(
                        max(
                            abs(a - b)
                            for a, b in zip(aucs[False], aucs[True][: len(aucs[False])], strict=True)
                        ),
                        6,
                    )
                    if batched and False in aucs
                    else None,
                }
            )
            print(rows[-1], flush=True)
    return rows


def machine(device: torch.device) -> dict:
    """What a timing depends on: the processor, whether it has bf16 units, what `auto` picks."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        name = next(
            (x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")), ""
        )
    return {
        "device": name or device.type,
        "bf16_units": cpu_has_bf16() if device.type == "cpu" else None,
        "precision_auto": resolve_precision("auto", device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def end_to_end(key: str, args: argparse.Namespace) -> tuple[list[dict], float]:
    """Both sides as processes on the same files, taking turns; the rows and the reference's
    training seconds per repetition (for the training-only table)."""
    drug, n_lines, n_genes, n_cells = SHAPES[key]
    domains = synthetic_domains(n_lines, n_genes, n_cells)
    default = SSDAConfig().method
    methods = {
        m: "ssda fit" if m == default else f"ssda fit --method {m}" for m in args.fit_methods.split(",")
    }
    runs: dict[str, list[dict]] = {"reference": [], **{side: [] for side in methods.values()}}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        write_inputs(
            folder,
            drug,
            (domains.source_x, domains.source_y),
            (domains.target_x, domains.target_y),
            domains.genes,
        )
        reference_copy(args.reference, folder, args.reference_repetitions)
        for _ in range(args.runs):
            runs["reference"].append(
                run_reference(folder, drug, args.epochs, args.threads, device=args.device)
            )
            for method, side in methods.items():  # the default as a user runs it: no --method
                chosen = None if method == default else method
                runs[side].append(
                    run_ours(folder, args.fit_repetitions, args.epochs, args.threads, args.device, chosen)
                )
            print(
                {side: {k: round(v, 2) for k, v in done[-1].items()} for side, done in runs.items()},
                flush=True,
            )
    rows = [per_repetition(key, side, done) for side, done in runs.items()]
    for row, method in zip(rows, ["", *methods], strict=True):
        row["method"] = method
        row["x_reference"] = round(rows[0]["seconds_per_repetition"] / row["seconds_per_repetition"], 2)
    return rows, rows[0]["train"]


def per_repetition(key: str, side: str, runs: list[dict]) -> dict:
    """The median run (by wall time) of one side, per repetition, its phases grouped alike."""
    median = statistics.median_low([r["wall"] for r in runs])
    run = next(r for r in runs if r["wall"] == median)
    phases = {
        "start-up": run["start-up"],
        "read & prepare": run["read"] + run.get("prepare", 0.0),
        "train": run["train"],
        "score & save": run["score"] + run.get("save", 0.0),
    }
    phases["rest"] = run["wall"] - sum(phases.values())
    n = run["repetitions"]
    return {
        "shape": key,
        "side": side,
        "repetitions": n,
        "runs (s)": " / ".join(f"{r['wall']:.1f}" for r in runs),
        "seconds_per_repetition": round(run["wall"] / n, 2),
        **{name: round(value / n, 2) for name, value in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--reference", type=Path, default=None, help="checkout of hliulab/SSDA4Drug to time beside ours"
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"some of {', '.join(SHAPES)}")
    parser.add_argument("--runs", type=int, default=2, help="end to end: runs of each side, taking turns")
    parser.add_argument("--fit-repetitions", type=int, default=SSDAConfig().repetitions, help="of ssda fit")
    parser.add_argument(
        "--fit-methods",
        default=SSDAConfig().method,
        help="end to end: the methods ssda fit runs, each as a side (default: the default method)",
    )
    parser.add_argument("--reference-repetitions", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=10, help="training only: the batched ensemble's R")
    parser.add_argument("--single-repetitions", type=int, default=3, help="0: skip the one-at-a-time mode")
    parser.add_argument("--precisions", default="fp32,bf16", help="some of fp32, bf16")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to time both sides on a GPU")
    parser.add_argument("--skip-training-only", action="store_true")
    parser.add_argument("--results", default="training.json", help="file name under bench/results/")
    args = parser.parse_args()
    os.environ["SSDA_THREADS"] = str(
        args.threads
    )  # ours trains with exactly this many, as the reference does
    torch.set_num_threads(args.threads)  # and the GEMM peak is measured with them
    results: dict = {"machine": machine(torch.device(args.device)), "end_to_end": [], "training_only": []}
    for key in args.shapes.split(","):
        reference = None
        if args.reference is not None:
            rows, reference = end_to_end(key, args)
            results["end_to_end"] += rows
        if not args.skip_training_only:
            results["training_only"] += time_ours(key, args, reference)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / args.results).write_text(json.dumps(results, indent=2))
    print(results["machine"])
    for name in ("end_to_end", "training_only"):
        if rows := results[name]:
            print(f"\n{name.replace('_', ' ')}\n{pd.DataFrame(rows).to_markdown(index=False)}")


if __name__ == "__main__":
    main()
