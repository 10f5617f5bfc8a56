"""Content hashes of raw inputs, so automation reacts to what changed and to nothing else.

The assets that read the inputs record the hash they read as `input_hash` metadata; the sensors
compare against it when their own cursor has no entry yet, so inputs that `make demo` (or any run
outside the sensors) already materialized are not ingested again.
"""

import hashlib
from pathlib import Path

import dagster as dg

GDSC_PATTERNS = ("Cell_line_RMA_proc_basalExp*", "*fitted_dose_response*", "drug_aliases.yaml")
INPUT_HASH = "input_hash"


def content_hash(paths: list[Path], root: Path) -> str:
    """sha256 over the relative names and bytes of `paths` (folders walked), in a stable order."""
    digest = hashlib.sha256()
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()})
    for file in files:
        digest.update(str(file.relative_to(root)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def dataset_hash(folder: Path) -> str:
    """The hash of one dataset folder of the raw zone."""
    return content_hash([folder], folder)


def gdsc_files(raw: Path) -> list[Path]:
    return sorted({f for pattern in GDSC_PATTERNS for f in raw.glob(pattern)})


def gdsc_hash(raw: Path) -> str:
    """The hash of every GDSC input of the raw zone (expression, dose-response, drug aliases)."""
    return content_hash(gdsc_files(raw), raw)


def materialized_hash(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> str | None:
    """The `input_hash` recorded by the latest materialization of `asset` (and `partition`)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
        ascending=False,
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(INPUT_HASH)
    return value.value if value is not None else None
