"""What several test modules share of the method alone: paths, the tiny training configuration,
local servers, the `ssda` command's arguments and errors, and batched-vs-alone runs. It imports no
part of the platform (Dagster, MLflow, ssda_assets; tests/test_layering.py checks it), so that the
method's tests run where only the method's dependencies are installed, as on a lent GPU machine
(bench/gpu_check.py). What needs the platform is in `tests/platform_helpers.py`.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import hashlib
import signal
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.data.prepare import prepare_domains
from ssda_model.data.splits import RepetitionSplit, repetition_split
from ssda_model.model import SSDAModel
from ssda_model.train.competitors import competitor_scores
from ssda_model.train.loop import DomainTensors

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small enough to train in about a second per repetition on 2 CPU cores.
FAST = SSDAConfig(encoder_dims=(64, 32, 16), predictor_dim=8, epochs=4, repetitions=2)


# ---- local servers -------------------------------------------------------------------------
def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 90) -> None:
    """Return once `url` answers; TimeoutError after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def default_signals() -> None:
    """Start `make ui` with the signal dispositions a terminal or a service manager gives it. An
    ignored or blocked signal is inherited across exec, and GNU make keeps an inherited SIG_IGN.
    When the tests run as a background job (SIGINT ignored), Dagster's in-process execution
    leaves SIGTERM ignored too: its interrupt handling sets SIGTERM to SIGINT's disposition
    (dagster._utils.interrupts.setup_interrupt_handlers), so make would ignore the SIGTERM."""
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for number in stopping:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)


# ---- the `ssda` command ----------------------------------------------------------------------
FAST_ARGS = ["--epochs", "3", "--repetitions", "2", "--quiet"]


def fit_args(source, target, out, *extra) -> list[str]:
    """`ssda fit` of a tiny model."""
    return ["fit", "--source", str(source), "--target", str(target), "--out", str(out), *FAST_ARGS, *extra]


def bench_args(source, target, out, methods="ssda", shots="1", repetitions=1) -> list[str]:
    """`ssda benchmark` of tiny repetitions (by default one method, one shot, one repetition)."""
    return [
        "benchmark",
        "--source",
        str(source),
        "--target",
        str(target),
        "--out",
        str(out),
        "--methods",
        methods,
        "--shots",
        shots,
        "--repetitions",
        str(repetitions),
        "--epochs",
        "2",
        "--quiet",
    ]


def run_error(capsys, argv) -> str:
    """The one `error:` line (exit code 2, no traceback) that `ssda argv` prints."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---- batched repetitions against one at a time -----------------------------------------------
def assert_members_train_alike(pair, config: SSDAConfig, per_repetition=0.05, on_average=0.02) -> None:
    """Batched and one-at-a-time AUCs close per repetition and on average, where rounding differs."""
    source, target = pair
    batched = [r["auc"] for r in SSDAModel.fit(source, target, config).metrics["repetitions"]]
    alone = [
        r["auc"]
        for r in SSDAModel.fit(source, target, config.replace(batch_repetitions=False)).metrics["repetitions"]
    ]
    assert np.allclose(batched, alone, atol=per_repetition), (batched, alone)
    assert abs(np.mean(batched) - np.mean(alone)) < on_average


def three_repetitions(pair, device: torch.device) -> tuple[DomainTensors, list[RepetitionSplit]]:
    """The pair as device tensors and the splits of repetitions 1–3 (3 shots, paper protocol)."""
    source, target = pair
    domains = prepare_domains(
        source, target, label_key="response", shots=3, val_fraction=0.2, scaling="per_domain"
    )
    splits = [
        repetition_split(domains.source_y, domains.target_y, 3, "paper", 0.2, seed=r) for r in (1, 2, 3)
    ]
    return DomainTensors.on_device(domains, device), splits


def competitor_scores_both_ways(pair, method: str, device: torch.device, config: SSDAConfig):
    """Three repetitions' target scores, batched and one at a time, with their splits."""
    data, splits = three_repetitions(pair, device)
    batched = competitor_scores(method, data, splits, [1, 2, 3], config)
    alone = competitor_scores(method, data, splits, [1, 2, 3], config.replace(batch_repetitions=False))
    return splits, batched, alone
