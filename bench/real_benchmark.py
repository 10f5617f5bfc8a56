"""The method comparison on the real public subsets (../shared/data): bulk lines → SCAD's cells.

    nice -n 10 .venv/bin/python bench/real_benchmark.py [data_dir] [--source gdsc|ccle] [--repetitions 20]
        [--shots 1,3,5] [--protocols paper,strict] [--targets PLX4720,Gefitinib,Afatinib,...]
        [--competitor-shots 3] [--methods ssda,target_only,...] [--against ssda] [--precision auto]
        [--report]

Per target and protocol, the ssda family, source_only and target_only at every --shots, and the
other methods (scad, scdeal, scdeal_nopretrain, codeae) at --competitor-shots under the paper
protocol; the methods run in the order --methods names them. Repetition r uses seed r for every
method, so results are paired. Each (target, protocol,
shots, method) is appended to bench/results/real_benchmark_<source>.csv once done; only the
repetitions the CSV lacks run (repetition r is seeded by r alone, so they pair with the earlier
ones), so an interrupted or extended run continues where it stopped; the cheapest, most telling parts
run first (paper protocol, 3 shots, then 1 and 5, then strict). Prints the tables of docs/results.md
(which the docs build makes with `table` from the CSV), the verdict on `ssda_auto` (issue 28: on
the cases its rule was designed on and on those held out), and writes the few-shot curves next to
the CSV.
"""

import argparse
import warnings
from pathlib import Path

import pandas as pd

from ssda_model.benchmark import ALL_METHODS, paired_wilcoxon, run_benchmark
from ssda_model.benchmark_plots import fewshot_curves
from ssda_model.config import PRECISIONS, SSDAConfig
from ssda_model.datasets import PUBLIC_TARGETS, SOURCES, public_scad_pair
from ssda_model.errors import SSDAInputWarning

RESULTS = Path(__file__).parent / "results"
KEY = ["target", "protocol", "shots", "method"]
CORE = (
    "ssda_blend",
    "ssda",
    "ssda_auto",
    "ssda_prior",
    "target_only",
    "source_only",
    "ssda_no_mme",
    "ssda_no_adv",
)  # at every shot count and protocol
# The cases ssda_auto's rule was chosen on: its first version (agreement over all genes) on the
# first four; reading the agreement along the cells' main axes came from the 1-shot repetitions of
# all ten, after the first version had run on them.
DESIGN = (
    "Gefitinib",
    "Afatinib",
    "PLX4720",
    "Sorafenib",
    "AR-42",
    "Vorinostat",
    "NVP-TAE684",
    "Gefitinib/no-lineage",
    "Afatinib/no-lineage",
    "PLX4720/no-lineage",
)
HELD_OUT = (
    "SB590885",
    "Selumetinib",
    "Erlotinib",
    "Cisplatin",
    "Lapatinib",
    "CP724714",
)  # bulks it never saw
FIRST_DESIGN = DESIGN[:4]  # what the rule's first version (agreement over all genes) was chosen on


def plan(args: argparse.Namespace) -> list[tuple[str, str, int, str]]:
    """(target, protocol, shots, method) in the order they run: what answers most, soonest."""
    competitors = [m for m in ALL_METHODS if m not in CORE and m in args.methods]
    core = [m for m in args.methods if m in CORE]
    shots = sorted(args.shots, key=lambda n: (n != 3, n))
    steps = []
    for protocol in args.protocols:
        for n in shots:
            steps += [(t, protocol, n, m) for t in args.targets for m in core]
            if protocol == "paper" and n == args.competitor_shots:
                steps += [(t, protocol, n, m) for m in competitors for t in args.targets]
    return steps


def table(results: pd.DataFrame, protocol: str, shots: int, against: str, targets: list[str]) -> str:
    """Methods × targets: mean ± std AUC, the repetitions, and the paired Wilcoxon p of `against`
    against the method. Rows: `against` first, then the benchmark's method order; columns in the
    order of `targets`, whatever order the CSV's rows were appended in."""
    chosen = results[(results["protocol"] == protocol) & (results["shots"] == shots)]
    order = [against, *(m for m in ALL_METHODS if m != against)]
    chosen = chosen.sort_values("method", key=lambda m: m.map(order.index), kind="stable")
    cells = {}
    for target in targets:
        group = chosen[chosen["target"] == target]
        for method, runs in group.groupby("method", sort=False):
            p = paired_wilcoxon(group, str(method), against)
            note = "" if pd.isna(p) else (" (p < 0.001)" if p < 0.001 else f" (p {p:.3f})")
            cells.setdefault(f"{method} (n = {len(runs)})", {})[target] = (
                f"{runs['auc'].mean():.3f} ± {runs['auc'].std():.3f}{note}"
            )
    return pd.DataFrame(cells).T.reindex(columns=targets).fillna("").to_markdown()


def verdict(
    results: pd.DataFrame,
    protocol: str,
    targets: list[str],
    design: tuple[str, ...] = DESIGN,
    method: str = "ssda_auto",
) -> str:
    """Per case and shot count, mean AUC of `method` minus the better of the shots alone
    (`target_only`) and `ssda`, and minus the shots alone: issue 28's bar is ≥ -0.01 for the first
    everywhere and ≥ +0.03 for the second at 1 shot on most cases. Repetitions are paired: only
    those every one of the three methods has count. `design`: the cases the rule was chosen on.
    `ssda_auto` and `ssda_prior` are shown beside a `method` other than them, where they ran."""
    chosen = results[(results["protocol"] == protocol) & results["target"].isin(targets)]
    means = chosen.pivot_table(index=["target", "shots", "repetition"], columns="method", values="auc")
    needed = [method, "target_only", "ssda"]
    if not set(needed) <= set(means.columns):
        return f"(needs {', '.join(needed)} under the {protocol} protocol)"
    paired = means.dropna(subset=needed).groupby(["target", "shots"])
    short = method.removeprefix("ssda_")
    beside = [m for m in ("ssda_auto", "ssda_prior") if m != method]
    rows = []
    for (target, shots), group in paired:
        mean = group.mean()
        best = max(mean["target_only"], mean["ssda"])
        rows.append(
            {
                "case": target,
                "set": "design" if target in design else "held out",
                "shots": int(shots),
                "n": len(group),
                method: round(mean[method], 3),
                **{m: f"{mean[m]:.3f}" if pd.notna(mean.get(m)) else "–" for m in beside},
                "ssda": round(mean["ssda"], 3),
                "shots alone": round(mean["target_only"], 3),
                f"{short} − best": round(mean[method] - best, 3),
                f"{short} − shots alone": round(mean[method] - mean["target_only"], 3),
            }
        )
    if not rows:
        return f"(no case has all of {', '.join(needed)} under the {protocol} protocol)"
    table = pd.DataFrame(rows)
    table["set"] = pd.Categorical(table["set"], ["design", "held out"])
    return table.sort_values(["set", "shots", "case"]).to_markdown(index=False)


def run(args: argparse.Namespace, path: Path) -> None:
    """Train the repetitions the plan holds and the CSV lacks, appending each finished part."""
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=[*KEY, "repetition"])
    have = done.groupby(KEY)["repetition"].max().to_dict()
    pairs = {t: public_scad_pair(args.data_dir, t, source=args.source) for t in args.targets}
    for target, protocol, shots, method in plan(args):
        first = int(have.get((target, protocol, shots, method), 0)) + 1
        if first > args.repetitions:
            continue
        source, cells = pairs[target]
        rows = run_benchmark(
            source,
            cells,
            methods=[method],
            shots=[shots],
            repetitions=args.repetitions - first + 1,
            first_repetition=first,
            config=SSDAConfig(protocol=protocol, precision=args.precision),
        )
        rows = rows.assign(target=target)
        rows.to_csv(path, mode="a", header=not path.exists(), index=False)
        print(
            f"{target} {protocol} {shots}-shot {method} repetitions {first}-{args.repetitions}: "
            f"{rows['auc'].mean():.3f} ± {rows['auc'].std():.3f}",
            flush=True,
        )


def report(args: argparse.Namespace, path: Path) -> None:
    """The tables per protocol and shot count (of --methods), and the few-shot curves per target (of
    every method in the CSV, so a run of a few methods does not redraw them without the others)."""
    every = pd.read_csv(path).drop_duplicates([*KEY, "repetition"], keep="last")
    every = every[every["repetition"] <= args.repetitions]
    results = every[every["method"].isin(args.methods)]
    for protocol in args.protocols:
        for shots in sorted(results.loc[results["protocol"] == protocol, "shots"].unique()):
            heading = f"{protocol} protocol, {shots}-shot ({args.source} source)"
            rows = table(results, protocol, shots, args.against, args.targets)
            print(f"\n{heading}, p against {args.against}\n{rows}")
    for method in ("ssda_blend", "ssda_auto"):
        for protocol in args.protocols:
            print(f"\n{method} against the better of the shots alone and ssda, {protocol} protocol")
            print(verdict(every, protocol, args.targets, method=method))
    published = every[(every["protocol"] == "paper") & every["target"].isin(PUBLIC_TARGETS)]
    for target, group in published.groupby("target"):  # all methods, always; the docs show these three
        fewshot_curves(group.drop(columns=["target"]), RESULTS / f"real_fewshot_{args.source}_{target}.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--source", choices=SOURCES, default="gdsc")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--shots", type=lambda s: [int(n) for n in s.split(",")], default=[1, 3, 5])
    parser.add_argument("--protocols", type=lambda s: s.split(","), default=["paper", "strict"])
    parser.add_argument("--targets", type=lambda s: s.split(","), default=[*DESIGN, *HELD_OUT])
    parser.add_argument("--competitor-shots", type=int, default=3)
    parser.add_argument(
        "--methods",
        type=lambda s: s.split(","),
        default=list(ALL_METHODS),
        help="a subset, for a first look (default: every method)",
    )
    parser.add_argument("--against", default="ssda", help="the method the paired p-values test against")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="of every method's training")
    parser.add_argument("--report", action="store_true", help="only print the tables of what the CSV holds")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=SSDAInputWarning)  # both files are z-scored already

    path = RESULTS / f"real_benchmark_{args.source}.csv"
    if not args.report:
        run(args, path)
    report(args, path)


if __name__ == "__main__":
    main()
