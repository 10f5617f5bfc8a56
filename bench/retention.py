"""Storage per task under the retention policy: one demo task retrained N times.

    .venv/bin/python bench/retention.py [--retrains 50] [--keep 5] [--mode archive|delete|off]
        [--epochs 1] [--repetitions 1] [--home DIR]

A fresh DAGSTER_HOME (a temporary folder unless --home) gets the demo raw zone and the data assets
of gefitinib/jhu006_gefitinib, then `trained_model` runs --retrains times with tiny settings, and
after each the champion is loaded as the analyses do (which fills the local model cache). Each row
is the disk use after one training: the artifact store (logged models and run artifacts), the
MLflow database, the local model cache and the whole DAGSTER_HOME, and how many versions still
hold their files. With retention on, the artifact store and the cache stop growing after K + 2
versions; only the databases' rows (a few kB per training) keep growing.
Writes bench/results/retention.json (with date, commit and machine) and prints a table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASK = ("gefitinib", "jhu006_gefitinib")


def megabytes(path: Path) -> float:
    files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
    return sum(p.stat().st_size for p in files if p.is_file()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrains", type=int, default=50)
    parser.add_argument("--keep", type=int, default=5)
    parser.add_argument("--mode", default="archive", choices=["archive", "delete", "off"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    home = (args.home or Path(tempfile.mkdtemp(prefix="ssda-retention-"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DAGSTER_HOME=str(home),
        SSDA_KEEP_VERSIONS=str(args.keep),
        SSDA_RETENTION=args.mode,
        MLFLOW_LOGGING_LEVEL="WARNING",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
    )
    for name in (
        "SSDA_RAW_DIR",
        "SSDA_DATA_DIR",
        "SSDA_WAREHOUSE",
        "MLFLOW_TRACKING_URI",
        "SSDA_MLFLOW_ARTIFACTS",
    ):
        os.environ.pop(name, None)

    import dagster as dg

    from ssda_assets.definitions import defs
    from ssda_assets.raw.catalog import register_partitions
    from ssda_assets.raw.demo_raw import write_demo_raw
    from ssda_assets.registry.versions import champion_model, model_name, native_files
    from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env

    paths, tracking = paths_from_env(), mlflow_from_env()
    write_demo_raw(paths.raw)
    definitions = defs()
    resources = {"paths": paths, "warehouse": warehouse_from_env(), "mlflow_tracking": tracking}
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    drug, dataset = TASK
    name = model_name(drug, dataset)
    with dg.DagsterInstance.ephemeral() as instance:
        register_partitions(instance, paths.raw)

        def materialize(assets, key=None, run_config=None):
            return dg.materialize(
                [definitions.get_assets_def(a) for a in assets],
                instance=instance,
                partition_key=key,
                resources=resources,
                run_config={**quiet, **(run_config or {})},
            )

        materialize(["gdsc_expression", "gdsc_response"])
        materialize(["gdsc_labels"], drug)
        materialize(["sc_dataset"], dataset)
        task = dg.MultiPartitionKey({"drug": drug, "dataset": dataset})
        materialize(["harmonized_expression", "target_dataset"], task)
        config = {
            "ops": {"trained_model": {"config": {"epochs": args.epochs, "repetitions": args.repetitions}}}
        }
        client = tracking.client()
        rows = []
        columns = [
            ("version", 7),
            ("artifacts MB", 12),
            ("mlflow.db MB", 12),
            ("cache MB", 8),
            ("home MB", 8),
        ]
        print(" ".join(f"{title:>{width}}" for title, width in columns), "with files", flush=True)
        for _ in range(args.retrains):
            started = time.perf_counter()
            materialize(["trained_model"], task, config)
            champion_model(client, name, paths.model_cache)  # as cell_predictions does
            versions = [int(v.version) for v in client.search_model_versions(f"name = '{name}'")]
            holding = sum(1 for v in versions if _has_files(native_files, client, name, v))
            row = {
                "version": max(versions),
                "artifacts_mb": round(megabytes(home / "mlartifacts"), 2),
                "mlflow_db_mb": round(megabytes(home / "mlflow.db"), 2),
                "cache_mb": round(megabytes(paths.model_cache), 2),
                "home_mb": round(megabytes(home), 2),
                "versions_with_files": holding,
                "seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(
                f"{row['version']:>7} {row['artifacts_mb']:>12.1f} {row['mlflow_db_mb']:>12.2f} "
                f"{row['cache_mb']:>8.1f} {row['home_mb']:>8.1f} {holding:>10}",
                flush=True,
            )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit.stdout.strip(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "settings": vars(args) | {"home": str(home)},
        "rows": rows,
    }
    out = REPO / "bench" / "results" / "retention.json"
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


def _has_files(native_files, client, name: str, version: int) -> bool:
    try:
        return bool(native_files(client, name, version)[1])
    except Exception:  # noqa: BLE001 - an archived version's MLmodel is gone with its files
        return False


if __name__ == "__main__":
    sys.exit(main())
