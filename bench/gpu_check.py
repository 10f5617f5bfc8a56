"""The checks that need a GPU, in one call of the workplace's device tool: the GPU tests, then
`ssda fit` (50 repetitions) beside the reference code, end to end, both on the GPU.

A lent GPU machine has Python 3.12 with a CUDA build of PyTorch, numpy, pandas, scipy,
scikit-learn, h5py, matplotlib, tabulate and pytest; it reaches no package index and receives only
this checkout (device tool: KINDS.md). So, here first:

    .venv/bin/python bench/gpu_check.py prepare --reference /path/to/SSDA4Drug

puts into .device/ (ignored by git) wheels of what the method needs beyond that image (anndata and
its own needs, for CPython 3.12) and a copy of the reference's Python files (never committed). Then
through the device tool, with time left to run it twice:

    run(command="python3 bench/gpu_check.py run", carry=[".device"], timeout_s=600)

It installs the carried wheels whose release that machine lacks into /tmp/site (first on the
path), records the device, runs tests/model/test_gpu.py, then bench/training.py end to end on cuda
(ours: the default and ssda_auto, 50 repetitions each; the reference: 3), one run each, and leaves
the logs and training_gpu.json under $OUT. `run --device cpu --fit-repetitions 2 --epochs 2`
rehearses it here (in a virtual environment without anndata, it installs what a GPU machine would).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.utils import parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / ".device"
WHEELS, REFERENCE = KIT / "wheels", KIT / "reference"
# anndata's large needs that the device image holds at releases anndata takes. pandas travels: the
# image may hold pandas 3, whose strings anndata 0.12 refuses to write.
ON_THE_IMAGE = {"numpy", "scipy", "h5py"}
LINUX_TAGS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def anndata_requirement() -> str:
    """The anndata pin of pyproject.toml, so the machine runs the release the tests here run."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in dependencies if d.startswith("anndata"))


def prepare(reference: Path, python_version: str) -> None:
    """The wheels and the reference's Python files under .device/, replacing what was there."""
    shutil.rmtree(KIT, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", folder]
        command += ["--python-version", python_version, "--implementation", "cp"]
        command += [arg for tag in LINUX_TAGS for arg in ("--platform", tag)]
        subprocess.run([*command, anndata_requirement()], check=True)
        for wheel in sorted(Path(folder).glob("*.whl")):
            if parse_wheel_filename(wheel.name)[0] not in ON_THE_IMAGE:
                shutil.copy(wheel, WHEELS)
    REFERENCE.mkdir()
    for module in reference.glob("*.py"):  # its scripts and modules; bench/end_to_end.py picks its four
        shutil.copy(module, REFERENCE)
    size = sum(p.stat().st_size for p in KIT.rglob("*") if p.is_file()) / 2**20
    print(f"{KIT}: {len(list(WHEELS.glob('*.whl')))} wheels and the reference's Python files, {size:.1f} MiB")


def to_install(wheels: Path) -> list[Path]:
    """The wheels whose release this Python lacks: a distribution it holds at the same version
    stays as it is; one it lacks, or holds at another version, is installed ahead of it."""
    missing = []
    for wheel in sorted(wheels.glob("*.whl")):
        name, version, *_ = parse_wheel_filename(wheel.name)
        try:
            held = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            held = None
        if held != version:
            missing.append(wheel)
    return missing


def step(name: str, command: list[str], env: dict[str, str], out: Path) -> int:
    """One command, its output shown and kept in out/name; its exit status."""
    print(f"\n== {name}: {' '.join(command)}", flush=True)
    with (
        (out / name).open("w") as log,
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as done,
    ):
        for line in done.stdout or []:
            print(line, end="", flush=True)
            log.write(line)
    return done.returncode


def run(args: argparse.Namespace) -> int:
    """Install what is missing, then the device record, the GPU tests and the end-to-end bench."""
    out = Path(os.environ.get("OUT") or REPO / "bench" / ".cache" / "gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    site = Path(args.site)
    missing = to_install(WHEELS)
    if missing:
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        subprocess.run([*command, "--target", str(site), *map(str, missing)], check=True)
    print("installed:", ", ".join(w.name for w in missing) or "nothing (all there)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "PYTHONUNBUFFERED": "1"}
    probe = "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"
    tests = ["tests/model/test_gpu.py", "tests/test_layering.py"]
    bench = [sys.executable, "bench/training.py", "--device", args.device, "--reference", str(REFERENCE)]
    bench += ["--shapes", "gefitinib", "--runs", "1", "--fit-repetitions", str(args.fit_repetitions)]
    bench += ["--fit-methods", "ssda_blend,ssda_auto", "--reference-repetitions", "3"]
    bench += ["--epochs", str(args.epochs), "--threads", str(os.cpu_count() or 1)]
    bench += ["--skip-training-only", "--results", args.results]
    steps = {
        "device.log": [sys.executable, "-c", probe],
        **({"nvidia-smi.log": ["nvidia-smi"]} if shutil.which("nvidia-smi") else {}),
        "gpu_tests.log": [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *tests],
        "bench.log": bench,
    }
    failed = [name for name, command in steps.items() if step(name, command, env, out)]
    if "bench.log" not in failed:  # a failed bench leaves no fresh results to mistake for these
        shutil.copy(REPO / "bench" / "results" / args.results, out)
    print(f"\nlogs and results in {out}; " + (f"failed: {', '.join(failed)}" if failed else "all passed"))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    here = verbs.add_parser("prepare", help="here: the wheels and the reference's Python files into .device/")
    here.add_argument("--reference", type=Path, required=True, help="checkout of hliulab/SSDA4Drug")
    here.add_argument("--python-version", default="3.12", help="of the machine that will run the check")
    there = verbs.add_parser("run", help="there: install what is missing, the GPU tests, the bench")
    there.add_argument("--device", default="cuda")
    there.add_argument("--fit-repetitions", type=int, default=50)
    there.add_argument("--epochs", type=int, default=50)
    there.add_argument("--site", default="/tmp/site", help="where the missing wheels are installed")
    there.add_argument("--results", default="training_gpu.json", help="file name under bench/results/")
    args = parser.parse_args()
    if args.verb == "prepare":
        prepare(args.reference, args.python_version)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
