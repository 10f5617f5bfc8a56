"""The `ssda` command: `ssda fit` runs the evaluation protocol and saves a model, `ssda predict` scores cells.

Bad input exits with code 2 and one stderr line starting `error:`; nothing is half-written.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ssda_model.benchmark import ALL_METHODS, run_benchmark, summarize
from ssda_model.benchmark_plots import boxplots, fewshot_curves
from ssda_model.config import METHODS, PRECISIONS, PROTOCOLS, SCALINGS, SSDAConfig
from ssda_model.data.readers import read_h5ad
from ssda_model.errors import SSDAInputError, SSDAInputWarning
from ssda_model.logs import log_to_stderr
from ssda_model.model import SSDAModel
from ssda_model.outputs import check_output, replace_folder
from ssda_model.streaming import CHUNK, predict_file

if TYPE_CHECKING:
    from ssda_model.train.protocol import FitMetrics

MODEL_URI_LOADERS = "ssda4drug.model_uris"  # URI scheme → (uri, tracking_uri) → (SSDAModel, version)
DEFAULTS = SSDAConfig()  # the one place the defaults are set; the command only exposes them
LABEL_KEY_HELP = "obs column of the labels: 1 sensitive, 0 resistant (default: %(default)s)"
REPETITIONS_HELP = "independent repetitions (seeds 1..R), each with its own shots (default: %(default)s)"
PROTOCOL_HELP = (
    "strict: the epoch is chosen on source validation; paper: on labeled target cells, as published "
    "(default: %(default)s)"
)
EPOCHS_HELP = "training epochs per repetition; the best epoch is kept (default: %(default)s)"
DEVICE_HELP = "auto (a GPU when present), cpu, cuda or cuda:N (default: %(default)s)"


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but usage mistakes are one `error:` line like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SSDAInputError(self.prog, message)


def _shots(value: str) -> int | str:
    if value == "all":
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {value!r}")


def _names(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in ALL_METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown methods {', '.join(unknown) or '(none)'}; expected some of {', '.join(ALL_METHODS)}"
        )
    return names


def _counts(value: str) -> list[int]:
    try:
        counts = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {value!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {value!r}")
    return counts


def _version() -> str:
    """The installed ssda4drug's version (the package metadata pip wrote)."""
    try:
        return version("ssda4drug")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The `ssda fit | predict | benchmark` parser; its defaults are SSDAConfig's."""
    parser = _OneLineParser(prog="ssda", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    fit = commands.add_parser("fit", help="train with the repetition protocol and save a model directory")
    fit.add_argument("--source", required=True, help="bulk .h5ad: X log expression, obs[label-key] 1/0")
    fit.add_argument(
        "--target", required=True, help="cells .h5ad: X log1p-normalised, obs[label-key] 1/0/missing"
    )
    fit.add_argument("--out", required=True, help="model directory to write")
    fit.add_argument("--label-key", default="response", help=LABEL_KEY_HELP)
    fit.add_argument(
        "--method",
        default=DEFAULTS.method,
        choices=METHODS,
        help="ssda_blend: per repetition, the mean score of ssda_auto's network and one trained on "
        "the shots alone (target_only); ssda_auto: the paper's losses with the bulk as a prior, "
        "weighted by how far it agrees with the shots; ssda_prior: the same at a fixed weight of "
        "0.1; ssda: as published; the others are ablations and baselines (default: %(default)s)",
    )
    fit.add_argument(
        "--shots", default=DEFAULTS.shots, type=_shots, help="labeled target cells per class, or 'all'"
    )
    fit.add_argument("--repetitions", default=DEFAULTS.repetitions, type=int, help=REPETITIONS_HELP)
    fit.add_argument("--protocol", default=DEFAULTS.protocol, choices=PROTOCOLS, help=PROTOCOL_HELP)
    fit.add_argument("--epochs", default=DEFAULTS.epochs, type=int, help=EPOCHS_HELP)
    fit.add_argument("--device", default=DEFAULTS.device, help=DEVICE_HELP)
    fit.add_argument(
        "--scaling",
        default=DEFAULTS.scaling,
        choices=SCALINGS,
        help="z-score genes per domain or with one scaler for both (default: %(default)s)",
    )
    fit.add_argument(
        "--precision",
        default=DEFAULTS.precision,
        choices=PRECISIONS,
        help="bf16 autocasts training (fp32 master weights and scores); auto = bf16 on CPUs with "
        "bf16 units and on GPUs, fp32 elsewhere",
    )
    fit.add_argument(
        "--batch-repetitions",
        default=DEFAULTS.batch_repetitions,
        action=argparse.BooleanOptionalAction,
        help="train the repetitions together as one batched ensemble (default); "
        "--no-batch-repetitions trains one model at a time",
    )
    fit.add_argument(
        "--n-top-genes", type=int, default=None, help="restrict to the target's highly variable genes"
    )
    fit.add_argument("--gene-list", default=None, help="file with one gene per line to restrict the input to")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    bench = commands.add_parser(
        "benchmark", help="compare methods on the same splits and shots (paper Fig. 2, 3)"
    )
    bench.add_argument("--source", required=True, help="bulk .h5ad: X log expression, obs[label-key] 1/0")
    bench.add_argument(
        "--target", required=True, help="cells .h5ad: X log1p-normalised, obs[label-key] 1/0/missing"
    )
    bench.add_argument("--out", required=True, help="folder for results.csv, summary.csv and the plots")
    bench.add_argument("--label-key", default="response", help=LABEL_KEY_HELP)
    bench.add_argument(
        "--methods",
        default=",".join(ALL_METHODS),
        type=_names,
        help=f"comma-separated, from {','.join(ALL_METHODS)}",
    )
    bench.add_argument("--shots", default=[1, 2, 3, 5, 10], type=_counts, help="comma-separated shot counts")
    bench.add_argument("--repetitions", default=50, type=int, help=REPETITIONS_HELP)
    bench.add_argument("--protocol", default=DEFAULTS.protocol, choices=PROTOCOLS, help=PROTOCOL_HELP)
    bench.add_argument("--epochs", default=DEFAULTS.epochs, type=int, help=EPOCHS_HELP)
    bench.add_argument("--device", default=DEFAULTS.device, help=DEVICE_HELP)
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    predict = commands.add_parser("predict", help="score cells with a saved model")
    predict.add_argument(
        "--model",
        required=True,
        help="a model folder written by `ssda fit`, or a models:/ URI of the MLflow registry: "
        "models:/<name>@<alias> (e.g. @champion, @challenger) or models:/<name>/<version>",
    )
    predict.add_argument(
        "--input", required=True, help="cells .h5ad to score (read a chunk at a time; genes matched by name)"
    )
    predict.add_argument(
        "--out", required=True, help="scored .h5ad to write: obs ssda_score, ssda_score_std, ssda_label"
    )
    predict.add_argument("--device", default="auto", help=DEVICE_HELP)
    predict.add_argument(
        "--chunk-size", default=CHUNK, type=int, help="cells scored at a time (bounds memory)"
    )
    predict.add_argument(
        "--tracking-uri",
        default=None,
        help="the MLflow tracking store and registry a models:/ URI is read from (default: "
        "MLFLOW_TRACKING_URI, as MLflow reads it)",
    )
    return parser


def format_metrics(metrics: FitMetrics) -> str:
    """The one-screen summary table that `ssda fit` prints."""
    fmt = lambda v: "   nan" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    where = "target cells" if metrics["evaluation"] == "target" else "source validation (shots=all)"
    chose = metrics.get("mean_bulk_weight") is not None  # ssda_auto (a model saved before has no key)
    members = list(metrics.get("mean_member_auc") or {})  # ssda_blend's
    lines = [
        f"method {metrics['method']} · shots {metrics['shots']} · protocol {metrics['protocol']} · "
        f"{metrics['n_genes']} genes · device {metrics['device']} · evaluated on {where}",
        f"{'rep':>4} {'seed':>5} {'AUC':>6} {'AUPR':>6} {'n_eval':>7} {'best_epoch':>10} {'chosen by':>10}"
        + (f" {'agreement':>9} {'bulk_weight':>11}" if chose else "")
        + "".join(f" {'AUC ' + m:>16}" for m in members),
    ]
    for row in metrics["repetitions"]:
        lines.append(
            f"{row['repetition']:>4} {row['seed']:>5} {fmt(row['auc']):>6} {fmt(row['aupr']):>6} "
            f"{row['n_eval']:>7} {row['best_epoch']:>10} {row['selection']:>10}"
            + (f" {row['bulk_agreement']:>9.2f} {fmt(row['bulk_weight']):>11}" if chose else "")
            + "".join(f" {fmt((row.get('member_auc') or {}).get(m)):>16}" for m in members)
        )
    lines.append(f"{'mean':>4} {'':>5} {fmt(metrics['mean_auc']):>6} {fmt(metrics['mean_aupr']):>6}")
    lines.append(f"{'std':>4} {'':>5} {fmt(metrics['std_auc']):>6} {fmt(metrics['std_aupr']):>6}")
    return "\n".join(lines)


def _fit(args: argparse.Namespace) -> None:
    out = Path(args.out)
    SSDAModel.check_out(out)
    try:
        config = SSDAConfig(
            method=args.method,
            shots=args.shots,
            repetitions=args.repetitions,
            protocol=args.protocol,
            epochs=args.epochs,
            device=args.device,
            scaling=args.scaling,
            precision=args.precision,
            batch_repetitions=args.batch_repetitions,
        )
    except ValueError as exc:
        raise SSDAInputError("ssda fit", str(exc)) from None
    seconds = {"start-up": _process_age()}
    started = time.perf_counter()
    source, target = read_h5ad(args.source), read_h5ad(args.target)
    seconds["read"] = time.perf_counter() - started
    model = SSDAModel.fit(
        source,
        target,
        config,
        label_key=args.label_key,
        source_name=args.source,
        target_name=args.target,
        n_top_genes=args.n_top_genes,
        gene_list=args.gene_list,
        progress=not args.quiet,
    )
    saving = time.perf_counter()
    model.save(out)
    seconds |= model.seconds | {"save": time.perf_counter() - saving}
    print(format_metrics(model.metrics))
    print(f"model written to {out}")
    print(format_seconds(seconds))


def _process_age() -> float:
    """Seconds since this process started: the interpreter's start-up and the imports."""
    return time.time() - psutil.Process().create_time()


def format_seconds(seconds: dict[str, float]) -> str:
    """One line of where a fit's time went, e.g. `took 101.2 s: start-up 3.1 s, read 0.2 s, …`
    (`bench/training.py` reads it)."""
    parts = ", ".join(f"{phase} {value:.2f} s" for phase, value in seconds.items())
    return f"took {sum(seconds.values()):.1f} s: {parts}"


def _benchmark(args: argparse.Namespace) -> None:
    out = Path(args.out)
    check_output(out, folder=True)
    try:
        config = SSDAConfig(protocol=args.protocol, epochs=args.epochs, device=args.device)
    except ValueError as exc:
        raise SSDAInputError("ssda benchmark", str(exc)) from None
    results = run_benchmark(
        read_h5ad(args.source),
        read_h5ad(args.target),
        methods=args.methods,
        shots=args.shots,
        repetitions=args.repetitions,
        config=config,
        label_key=args.label_key,
        source_name=args.source,
        target_name=args.target,
        progress=not args.quiet,
    )
    summary = summarize(results)

    def write(folder: Path) -> None:
        folder.mkdir()
        results.to_csv(folder / "results.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)
        boxplots(results, "auc", folder / "auc_boxplot.png")
        boxplots(results, "aupr", folder / "aupr_boxplot.png")
        fewshot_curves(results, folder / "fewshot_curves.png")

    replace_folder(out, write)
    print(summary.round(3).to_string(index=False))
    print(f"results written to {out}")


def _uri_loader(model: str) -> Callable | None:
    """The loader an installed package registers (entry point group `MODEL_URI_LOADERS`) for the
    scheme of a `--model` URI, or None for a folder. The method imports no platform: the registry's
    `models:/` loader is ssda_assets' (pyproject.toml)."""
    match = re.match(r"^([a-z][a-z0-9+.-]+):/", model)
    if match is None:
        return None
    for entry in entry_points(group=MODEL_URI_LOADERS):
        if entry.name == match.group(1):
            return entry.load()
    scheme = match.group(1)
    raise SSDAInputError(model, f"no installed package reads {scheme}:/ URIs; expected a model folder")


def _predict(args: argparse.Namespace) -> None:
    out = Path(args.out)
    check_output(out, folder=False)
    if not Path(args.input).exists():
        raise SSDAInputError(args.input, "file not found")
    provenance, registered = None, ""
    load_registered = _uri_loader(args.model)
    if load_registered is not None:
        model, version = load_registered(args.model, args.tracking_uri)
        model_path, registered = version.uri, f" ({version.uri}, run {version.run_id})"
        provenance = {"model_version": version.version, "model_run_id": version.run_id}  # as the platform
    else:
        model, model_path = SSDAModel.load(args.model), str(Path(args.model).resolve())
    counts = predict_file(
        model,
        args.input,
        out,
        model_path=model_path,
        device=args.device,
        chunk_size=args.chunk_size,
        provenance=provenance,
    )
    print(
        f"scored {counts['cells']} cells with {len(model.state_dicts)} models{registered}: "
        f"{counts['sensitive']} sensitive, {counts['cells'] - counts['sensitive']} resistant; "
        f"{counts['genes_missing']} model genes missing → {out}"
    )


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, SSDAInputWarning):
        print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one `ssda` command; 0 when done, 2 with one `error:` line on stderr for bad input."""
    log_to_stderr("ssda_model")
    with warnings.catch_warnings():
        warnings.simplefilter("always", SSDAInputWarning)
        warnings.showwarning = _one_line_warning
        try:
            args = build_parser().parse_args(argv)
            {"fit": _fit, "predict": _predict, "benchmark": _benchmark}[args.command](args)
        except SSDAInputError as exc:  # bad input only: any other exception is a bug and keeps its traceback
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
