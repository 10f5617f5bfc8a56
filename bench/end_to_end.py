"""`ssda fit` and the authors' `experiment_shot.py` as a user runs them: each a process, on the same
matrices, with where each one's time goes. `bench/training.py --reference DIR` prints the table.

The inputs are written once from one pair of float32 matrices, in both layouts: the reference's
genes × samples CSVs under `Datasets/processedData/<drug>/` (9 significant digits, which give back
every float32 exactly) and our `source.h5ad` / `target.h5ad`. The reference runs from a copy of its
four modules beside those CSVs, with its repetition loop (`range(50)`) set to the repetitions asked
for: the checkout itself is never changed.

Where the time goes. Ours: `ssda fit` prints it (`took … s: start-up …, read …, prepare …, train …,
score …, save …`). The reference's, from when each of its lines reached us (`python -u`): start-up
until its first `para:` line; per repetition, reading and splitting until `device:`, training
(building the networks, the epochs and saving its weights) until `Sampling Method:`, scoring until
`Test Performance`.

Both run in the environment the bench was started in, without the OpenMP settings importing
`ssda_model` made in this process: `ssda fit` makes them again itself, and the reference, as a
user types its command, never would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ssda_model import OPENMP_SET_ON_IMPORT
from ssda_model.data.prepare import PreparedDomains, prepare_domains
from ssda_model.datasets import synthetic_pair

REFERENCE_MODULES = ("experiment_shot.py", "utils.py", "trainer.py", "model.py")
REFERENCE_LOOP = "    for i in range(50):"
FLOAT_FORMAT = "%.9g"  # the shortest fixed width that gives back every float32


def synthetic_domains(n_lines: int, n_genes: int, n_cells: int) -> PreparedDomains:
    """The bench's synthetic pair of a shape, z-scored as `ssda fit` would (3 shots)."""
    source, target = synthetic_pair(n_source=n_lines, n_cells=n_cells, n_genes=n_genes, seed=0)
    return prepare_domains(
        source, target, label_key="response", shots=3, val_fraction=0.2, scaling="per_domain"
    )


def user_environment() -> dict[str, str]:
    """This process's environment less what importing ssda_model set in it (OpenMP's spin)."""
    return {k: v for k, v in os.environ.items() if k not in OPENMP_SET_ON_IMPORT}


def write_inputs(
    folder: Path, drug: str, source: tuple, target: tuple, genes: list[str]
) -> tuple[Path, Path]:
    """Both layouts of (x, y) bulk and cells under `folder`; returns our (source, target) .h5ad."""
    paths = []
    for name, (x, y) in (("source", source), ("target", target)):
        x = np.asarray(x, dtype=np.float32)
        samples = [f"{name}{i}" for i in range(len(y))]
        data = folder / "Datasets" / "processedData" / drug / f"{name}_data"
        data.mkdir(parents=True)
        pd.DataFrame(x.T, index=genes, columns=samples).to_csv(
            data / f"{name}_scaled_tp4k.csv", float_format=FLOAT_FORMAT
        )
        labels = pd.DataFrame({"response": np.asarray(y).astype(int)}, index=samples)
        labels.to_csv(data / f"{name}_meta_data.csv")
        path = folder / f"{name}.h5ad"
        ad.AnnData(X=x, obs=labels, var=pd.DataFrame(index=genes)).write_h5ad(path)
        paths.append(path)
    return paths[0], paths[1]


def read_reference_layout(folder: Path, drug: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(samples × genes as float32, labels) of one domain, read as experiment_shot.py reads them."""
    data = folder / "Datasets" / "processedData" / drug / f"{name}_data"
    x = pd.read_csv(data / f"{name}_scaled_tp4k.csv", index_col=0).T
    y = pd.read_csv(data / f"{name}_meta_data.csv", index_col=0)
    return x.to_numpy(np.float32), y["response"].to_numpy()


def run_ours(
    folder: Path, repetitions: int, epochs: int, threads: int, device: str = "auto", method: str | None = None
) -> dict:
    """`ssda fit` with its defaults but `repetitions`, `epochs`, `device` and `method` (None: the
    default method): wall seconds and the phases it prints. It runs as `python -m ssda_model fit`,
    the `ssda` command's own code, so that it runs where the package is importable but not
    installed (a lent GPU machine: bench/gpu_check.py)."""
    out = folder / "model"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "ssda_model",
        "fit",
        "--source",
        str(folder / "source.h5ad"),
        "--target",
        str(folder / "target.h5ad"),
    ]
    command += ["--out", str(out), "--repetitions", str(repetitions), "--epochs", str(epochs), "--quiet"]
    command += ["--device", device] + (["--method", method] if method else [])
    start = time.perf_counter()
    done = subprocess.run(
        command, env={**user_environment(), "SSDA_THREADS": str(threads)}, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"ssda fit failed:\n{done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("took "))
    phases = {
        name: float(value) for name, value in re.findall(r"([a-z-]+) ([\d.]+) s", line.split(":", 1)[1])
    }
    return {"wall": wall, "repetitions": repetitions, **phases}


def reference_copy(checkout: Path, folder: Path, repetitions: int) -> Path:
    """The reference's modules copied into `folder`, its loop set to `repetitions`."""
    for module in REFERENCE_MODULES:
        shutil.copy(checkout / module, folder / module)
    script = folder / "experiment_shot.py"
    text = script.read_text()
    if REFERENCE_LOOP not in text:
        raise RuntimeError(
            f"{checkout / 'experiment_shot.py'}: no {REFERENCE_LOOP.strip()!r} to set the repetitions"
        )
    script.write_text(text.replace(REFERENCE_LOOP, f"    for i in range({repetitions}):"))
    return script


def run_reference(
    folder: Path,
    drug: str,
    epochs: int,
    threads: int | None,
    extra_env: dict[str, str] | None = None,
    device: str = "cpu",
) -> dict:
    """experiment_shot.py (3-shot, the paper's configuration) in `folder` on `device` ("cpu", or
    "cuda": its own word for it is "gpu"), with `threads` as OMP_NUM_THREADS and MKL_NUM_THREADS
    (None: without either, as a user types the command) and `extra_env` on top: wall seconds, and
    the phases from when its lines arrived."""
    command = [sys.executable, "-u", "experiment_shot.py", "--drug", drug, "--gene", "_tp4k", "--n", "3"]
    command += ["--device", "gpu" if device == "cuda" else "cpu", "--epochs", str(epochs)]
    command += ["--batch_size", "32", "--lr", "0.001"]
    command += ["--dropout", "0.3", "--encoder_h_dims", "512,256", "--bottleneck", "128"]
    command += ["--predictor_h_dims", "64,32"]
    env = {k: v for k, v in user_environment().items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env |= extra_env or {}
    seen: list[tuple[float, str]] = []
    start = time.perf_counter()
    with subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        for line in run.stdout:
            seen.append((time.perf_counter() - start, line))
    wall = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"the reference failed:\n{''.join(x for _, x in seen[-40:])}")
    return {"wall": wall, **reference_phases(seen)}


def reference_phases(seen: list[tuple[float, str]]) -> dict:
    """Seconds per phase, summed over repetitions, from (arrival, line) pairs of the reference."""
    marks = {"para:": "rep", "device:": "read", "Sampling Method:": "train", "Test Performance": "score"}
    events = [(t, marks[key]) for t, line in seen for key in marks if line.startswith(key)]
    starts = [t for t, event in events if event == "rep"]
    if not starts or sum(event == "score" for _, event in events) != len(starts):
        raise RuntimeError(
            "the reference's output lacks a repetition's lines:\n" + "".join(x for _, x in seen[-40:])
        )
    phases = {"start-up": starts[0], "read": 0.0, "train": 0.0, "score": 0.0}
    last = starts[0]
    for t, event in events:
        if event != "rep":
            phases[event] += t - last
        last = t
    return {**phases, "repetitions": len(starts)}
