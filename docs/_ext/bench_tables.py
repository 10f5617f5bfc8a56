"""Sphinx extension: the results tables of docs/results.md and docs/performance.md, generated at
build time from the files in bench/results/, each with the date and commit of the file it reads.

A results file carries no date of its own, so both come from git (`git log -1 -- <file>`): the last
commit that changed it; "uncommitted" when the file is not in git, and a note when the working copy
differs from that commit. The tables are written to docs/_generated/ (git-ignored, excluded from the
sources) and pulled into the pages with MyST's `include` directive, so rerunning a benchmark and
rebuilding the docs updates them; a results file that disappears fails the build.
"""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
OUT = Path(__file__).resolve().parents[1] / "_generated"
TARGETS = {"Gefitinib": "JHU006 / Gefitinib", "Afatinib": "SCC47 / Afatinib", "PLX4720": "A375 / PLX4720"}


def provenance(path: Path) -> str:
    """'date, commit' of the last commit that changed `path`, or 'uncommitted'."""
    relative = path.relative_to(ROOT)

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    last = git("log", "-1", "--format=%cs, commit %h", "--", str(relative))
    if not last:
        return "uncommitted"
    changed = git("status", "--porcelain", "--", str(relative))
    return f"{last}; the working copy differs from it" if changed else last


def source_line(path: Path, what: str = "Generated from") -> str:
    """The line under a table or figure: its file, date and commit."""
    return f"*{what} `{path.relative_to(ROOT)}` ({provenance(path)}).*\n"


def _benchmark_module():
    """bench/real_benchmark.py, whose `table` prints the same tables (one way to make them)."""
    spec = importlib.util.spec_from_file_location("real_benchmark", ROOT / "bench" / "real_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmark_tables(csv: Path, against: str, heading: str) -> str:
    """One table per (protocol, shots): mean ± std AUC, n, paired Wilcoxon p of `against`."""
    bench = _benchmark_module()
    every = pd.read_csv(csv).drop_duplicates([*bench.KEY, "repetition"], keep="last")
    targets = [t for t in TARGETS if t in set(every["target"])] or sorted(every["target"].unique())
    parts = [source_line(csv)]
    for protocol in ("paper", "strict"):
        chosen = every[every["protocol"] == protocol]
        for shots in sorted(chosen["shots"].unique()):
            rows = bench.table(chosen, protocol, int(shots), against, targets)
            for name, title in TARGETS.items():
                rows = rows.replace(f" {name} ", f" {title} ", 1)
            word = "shot" if shots == 1 else "shots"
            parts.append(f"{heading} {protocol} protocol, {shots} {word}, p against `{against}`\n\n{rows}\n")
    return "\n".join(parts)


def verdict_tables(csv: Path, heading: str, auto_rows: Path | None = None, method: str = "ssda_auto") -> str:
    """`method` against the better of the shots alone and `ssda`, per case, for each protocol;
    `auto_rows`: take `ssda_auto`'s rows from this file instead (an earlier version of its rule)."""
    bench = _benchmark_module()
    every = pd.read_csv(csv)
    parts = [source_line(csv)]
    design = bench.DESIGN
    if auto_rows is not None:
        design = bench.FIRST_DESIGN
        every = pd.concat([every[every["method"] != "ssda_auto"], pd.read_csv(auto_rows)])
        parts.append(source_line(auto_rows, "`ssda_auto`'s rows from"))
    every = every.drop_duplicates([*bench.KEY, "repetition"], keep="last")
    cases = [*bench.DESIGN, *bench.HELD_OUT]
    for protocol in ("paper", "strict"):
        parts.append(
            f"{heading} {protocol} protocol\n\n{bench.verdict(every, protocol, cases, design, method)}\n"
        )
    return "\n".join(parts)


def json_table(path: Path, columns: dict[str, str], key: str | None = None) -> str:
    """A list of records (or the list under `key`) as a markdown table of the chosen fields, renamed."""
    records = json.loads(path.read_text())
    frame = pd.DataFrame(records if key is None else records[key])
    frame = frame[[c for c in columns if c in frame.columns]].rename(columns=columns)
    machine = records.get("machine") if isinstance(records, dict) else None
    ran_on = (
        "Ran on: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in machine.items()) + ".\n\n"
        if machine
        else ""
    )
    return f"{source_line(path)}\n{ran_on}{frame.to_markdown(index=False, floatfmt='g', missingval='')}\n"


def _write(name: str, text: str) -> None:
    """Write only what changed, so an unchanged table does not rebuild its page."""
    path = OUT / name
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app=None) -> None:
    """Write every generated table and copy the few-shot figures into docs/_generated/."""
    OUT.mkdir(exist_ok=True)
    gdsc, ccle = RESULTS / "real_benchmark_gdsc.csv", RESULTS / "real_benchmark_ccle.csv"
    _write("real_benchmark_gdsc.md", benchmark_tables(gdsc, "ssda_prior", "###"))
    _write("real_benchmark_gdsc_against_ssda.md", benchmark_tables(gdsc, "ssda", "###"))
    _write("blend_verdict.md", verdict_tables(gdsc, "###", method="ssda_blend"))
    _write("bulk_trust_verdict.md", verdict_tables(gdsc, "###"))
    first_rule = RESULTS / "real_benchmark_gdsc_ssda_auto_all_genes.csv"
    _write("bulk_trust_verdict_all_genes.md", verdict_tables(gdsc, "####", first_rule))
    _write("real_benchmark_ccle.md", benchmark_tables(ccle, "ssda", "###"))
    _write(
        "predict.md",
        json_table(
            RESULTS / "predict.json",
            {
                "cells": "cells",
                "genes": "genes",
                "seconds": "seconds",
                "peak_rss_mb": "peak RSS (MB)",
                "cells_per_second": "cells / s",
            },
        ),
    )
    end_to_end = {
        "shape": "shape",
        "side": "side",
        "method": "method",
        "repetitions": "repetitions",
        "runs (s)": "runs (s)",
        "seconds_per_repetition": "s / repetition",
        "start-up": "start-up",
        "read & prepare": "read & prepare",
        "train": "train",
        "score & save": "score & save",
        "rest": "rest",
        "x_reference": "× reference",
    }
    for results, table in (  # a CPU with bf16 units, and the same capped at AVX2
        ("training.json", "training_end_to_end.md"),
        ("training_avx2.json", "training_end_to_end_avx2.md"),
    ):
        _write(table, json_table(RESULTS / results, end_to_end, "end_to_end"))
    _write(
        "training.md",
        json_table(
            RESULTS / "training.json",
            {
                "shape": "shape",
                "mode": "mode",
                "seconds_per_repetition": "s / repetition",
                "x_reference": "× reference",
                "gflops": "GFLOP/s",
                "gemm_peak_gflops": "GEMM peak",
                "fraction_of_peak": "share of peak",
                "weight_passes_ms_per_step": "weight passes (ms / step)",
                "ceiling_fraction_of_peak": "ceiling",
                "mean_auc": "mean AUC",
            },
            "training_only",
        ),
    )
    reference = {
        "input": "input",
        "lines": "lines",
        "cells": "cells",
        "repetitions": "repetitions",
        "wall": "s / repetition",
        "start-up": "start-up",
        "read": "read & prepare",
        "train": "train",
        "score": "score",
    }
    _write("reference_inputs.md", json_table(RESULTS / "reference_inputs.json", reference))
    figures = []
    for figure in sorted(RESULTS.glob("real_fewshot_*.png")):
        shutil.copyfile(figure, OUT / figure.name)
        image = f"![Few-shot curves, {figure.stem}](_generated/{figure.name})"
        figures.append(f"{image}\n\n{source_line(figure, 'Figure')}")
    _write("fewshot.md", "\n".join(figures))


def setup(app):
    """Generate the tables when a build starts, before any page is read."""
    app.connect("builder-inited", generate)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
