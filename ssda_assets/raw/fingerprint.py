"""Content hashes of raw inputs, so automation reacts to what changed and to nothing else.

The assets that read the inputs record the hash they read as `input_hash` metadata; the sensors
compare against it when their own cursor has no entry yet, so inputs that `make demo` (or any run
outside the sensors) already materialized are not ingested again.

The sensors hash on every tick, and raw datasets run to gigabytes: each file's sha256 is kept in this
process (the long-lived code server) and reused while its stat signature (size, mtime, inode, device,
ctime) is unchanged, so a tick costs a stat per file and reads only files that changed. A folder's
hash is sha256 over its (relative name, file sha256) pairs. As with rsync and git, the known limit is
a file rewritten in place at the same size within one mtime tick of its filesystem: it reads as
unchanged until its signature next moves.
"""

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import dagster as dg

GDSC_PATTERNS = ("Cell_line_RMA_proc_basalExp*", "*fitted_dose_response*", "drug_aliases.yaml")
INPUT_HASH = "input_hash"
_CACHE_LIMIT = 10_000  # files; far above a raw zone's, an entry is a few hundred bytes

_digests: OrderedDict[Path, tuple[tuple[int, ...], str]] = OrderedDict()  # least recently used first
_lock = threading.Lock()


def _file_digest(path: Path) -> str:
    """sha256 of one file's bytes: the only read of file contents in this module."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _cached_digest(file: Path) -> str:
    """The file's sha256, read again only when its stat signature moved since the last read."""
    key = file.resolve()
    stat = key.stat()  # before the read: a write during it moves the signature, so the next tick re-reads
    signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev, stat.st_ctime_ns)
    with _lock:
        cached = _digests.get(key)
        if cached is not None and cached[0] == signature:
            _digests.move_to_end(key)
            return cached[1]
    digest = _file_digest(key)  # unlocked: a sensor hashing a new file need not hold up the others
    with _lock:
        _digests[key] = (signature, digest)
        _digests.move_to_end(key)
        while len(_digests) > _CACHE_LIMIT:
            _digests.popitem(last=False)
    return digest


def content_hash(paths: list[Path], root: Path) -> str:
    """sha256 over the (name relative to `root`, sha256) pairs of the files of `paths` (folders walked),
    sorted by name: the same bytes under the same names hash alike wherever they lie."""
    files = {f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()}
    digest = hashlib.sha256()
    for name, file in sorted((str(f.relative_to(root)), f) for f in files):
        digest.update(f"{name}\0{_cached_digest(file)}".encode())  # fixed-length digest: pairs can't blur
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
