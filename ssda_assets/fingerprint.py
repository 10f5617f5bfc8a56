"""Content hashes of raw inputs, so automation reacts to what changed and to nothing else."""

import hashlib
from pathlib import Path


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
