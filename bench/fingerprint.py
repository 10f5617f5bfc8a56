"""Sensor ticks over ten 1 GB datasets (issue: a tick must take under a second).

    python bench/fingerprint.py [--datasets 10] [--gb 1] [--dir /tmp]

Each dataset folder holds a sparse matrix of the given size (cheap on disk, read in full all the
same) and two small files. Tick 1 reads everything; tick 2 finds every stat signature unchanged;
tick 3 follows a change to one small file of one dataset.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from ssda_assets.raw import fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: the temp dir)")
    args = parser.parse_args()
    read = fingerprint._file_digest
    counted = [0]

    def counting(path: Path) -> str:
        counted[0] += path.stat().st_size
        return read(path)

    fingerprint._file_digest = counting
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folders = [Path(tmp) / f"dataset_{i}" for i in range(args.datasets)]
        for folder in folders:
            folder.mkdir()
            (folder / "matrix.mtx").touch()
            os.truncate(folder / "matrix.mtx", int(args.gb * (1 << 30)))
            (folder / "genes.tsv").write_text("TP53\nEGFR\n")
            (folder / "manifest.yaml").write_text("drugs: [gefitinib]\n")

        def tick() -> tuple[float, int]:
            counted[0] = 0
            start = time.perf_counter()
            for folder in folders:
                fingerprint.dataset_hash(folder)
            return time.perf_counter() - start, counted[0]

        rows = [("1 (cold)", *tick()), ("2 (unchanged)", *tick())]
        changed = folders[0] / "genes.tsv"
        mtime = changed.stat().st_mtime_ns + 10**9  # past the filesystem's timestamp granularity
        changed.write_text("TP53\nKRAS\n")
        os.utime(changed, ns=(mtime, mtime))
        rows.append(("3 (one small file changed)", *tick()))
    print(f"{args.datasets} datasets of {args.gb:g} GB\n")
    print("| tick | seconds | bytes read |\n|---|---:|---:|")
    for name, seconds, count in rows:
        print(f"| {name} | {seconds:.4f} | {count:,} |")


if __name__ == "__main__":
    main()
