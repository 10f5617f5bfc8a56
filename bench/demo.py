"""`make demo`'s pipeline, timed per stage and task, on a quiet machine and beside a CPU hog.

    python bench/demo.py [--skip-loaded]

Each run is `python -m ssda_assets.operations.pipeline --demo` (what `make demo` runs once installed) in a
fresh DAGSTER_HOME. Step times come from Dagster's own run records. "loaded" runs the same
pipeline while another process (plain torch, OpenMP's default threads and wait policy, as a
notebook would be) multiplies matrices without pause. Goals (issue 13): the quiet pipeline ≤ 150 s,
loaded ≤ 2× quiet, attribution_report ≤ 10 % of trained_model per task (the default training).
Run it when nothing else runs: it measures contention.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
HOG = "import torch\na = torch.randn(1500, 1500)\nwhile True:\n    a = (a @ a).tanh()\n"


def run_demo(home: Path) -> float:
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ssda_assets.operations.pipeline", "--demo"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def step_seconds(home: Path) -> pd.DataFrame:
    """Seconds of each (asset step, partition) of the runs recorded under `home`."""
    rows = []
    os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml reads its storage folder from it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            for step in instance.get_run_step_stats(run.run_id):
                if step.end_time and step.start_time:
                    rows.append(
                        {
                            "step": step.step_key,
                            "partition": run.tags.get("dagster/partition", "-"),
                            "seconds": step.end_time - step.start_time,
                        }
                    )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-loaded", action="store_true", help="only the quiet run")
    args = parser.parse_args()
    walls, steps = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for case in ("quiet", "loaded"):
            if case == "loaded" and args.skip_loaded:
                continue
            home = Path(scratch) / case
            home.mkdir()
            hog = subprocess.Popen([sys.executable, "-c", HOG]) if case == "loaded" else None
            try:
                walls[case] = run_demo(home)
            finally:
                if hog is not None:
                    hog.kill()
            steps[case] = step_seconds(home)
    table = pd.concat(
        {
            case: frame.pivot_table(index="step", columns="partition", values="seconds", aggfunc="sum")
            for case, frame in steps.items()
        },
        names=["case"],
    )
    print(table.round(1).to_markdown())
    quiet = steps["quiet"]
    per_task = quiet[quiet["step"].isin(["trained_model", "attribution_report"])].pivot_table(
        index="partition", columns="step", values="seconds"
    )
    per_task["attribution / training"] = per_task["attribution_report"] / per_task["trained_model"]
    print(per_task.round(2).to_markdown())
    summary = pd.DataFrame({"pipeline seconds": walls})
    if "loaded" in walls:
        summary.loc["loaded", "× quiet"] = walls["loaded"] / walls["quiet"]
    print(summary.round(2).to_markdown())


if __name__ == "__main__":
    main()
