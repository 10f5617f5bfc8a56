"""Will it fit? The memory a fit or a benchmark needs, estimated and checked before training.

Each repetition keeps its best-epoch weights, its split's cell indices and its per-epoch history
until the end; the repetitions that train together as one ensemble (`ensemble_size`) also hold
gradients, optimiser state and their batches' activations; the z-scored data are held once.
Nothing bounds `repetitions`, `epochs` or the gene count otherwise, so a value that cannot fit
would grow until the machine swaps or the process is killed.
"""

from __future__ import annotations

import psutil
import torch

from ssda_model.config import SSDAConfig
from ssda_model.errors import SSDAInputError
from ssda_model.module.networks import SSDANet
from ssda_model.train.blend import member_methods
from ssda_model.train.device import resolve_device
from ssda_model.train.loop import ensemble_size

FLOAT = 4
OPTIMISER_FLOATS = {"adagrad": 1, "sgd": 1, "adam": 2}  # state tensors per weight
HISTORY_RECORD = 1024  # one epoch's losses and AUCs as a Python dict, bytes
GIB = 1024**3


def n_weights(n_genes: int, config: SSDAConfig) -> int:
    """Weights of one network (built on the meta device: no memory is used)."""
    with torch.device("meta"):
        return sum(t.numel() for t in SSDANet(n_genes, config).state_dict().values())


def estimate(n_genes: int, n_samples: int, config: SSDAConfig) -> dict[str, float]:
    """Bytes a fit of `config.repetitions` needs: per repetition kept, per trained member, in all."""
    weights = n_weights(n_genes, config)
    networks = len(member_methods(config.method))  # kept per repetition; the blend's train in turn
    kept = FLOAT * weights * networks + 2 * 8 * n_samples + HISTORY_RECORD * config.epochs
    rows = 3 * config.batch_size  # source, shot and unlabeled batches of one step
    trained = FLOAT * (2 + OPTIMISER_FLOATS[config.optimizer]) * weights + 4 * FLOAT * rows * (
        2 * n_genes + 2 * sum(config.encoder_dims)
    )  # inputs, masks, layers, gradients
    together = min(config.repetitions, ensemble_size(n_genes, config))
    data = FLOAT * n_samples * n_genes
    return {
        "per_repetition": kept,
        "per_member": trained,
        "together": together,
        "data": data,
        "total": data + together * trained + config.repetitions * kept,
    }


def available_bytes(device: torch.device) -> int:
    """Memory free for a fit on `device` now: the GPU's free memory, else the system's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def check_fits_memory(n_genes: int, n_samples: int, config: SSDAConfig) -> None:
    """Refuse, before training, repetitions × genes × epochs that cannot fit in memory, with the estimate."""
    need = estimate(n_genes, n_samples, config)
    device = resolve_device(config.device)
    free = available_bytes(device)
    if need["total"] <= free:
        return
    spare = free - need["data"] - need["together"] * need["per_member"]
    most = int(spare // need["per_repetition"])
    advice = (
        f"use at most {most} repetitions or fewer genes"
        if most >= 1
        else "even one repetition does not fit: use fewer genes (--n-top-genes) or a machine with more memory"
    )
    raise SSDAInputError(
        f"repetitions={config.repetitions}",
        (
            f"needs about {need['total'] / GIB:,.1f} GiB on {device} but {free / GIB:,.1f} GiB is available: "
            f"{need['per_repetition'] / 2**20:,.2f} MiB kept per repetition "
            f"({n_genes} genes, {config.epochs} epochs), {need['per_member'] / 2**20:,.1f} MiB per "
            f"repetition training ({need['together']} at a time: weights, "
            f"gradients, optimiser state, activations), {need['data'] / GIB:,.2f} GiB of data; {advice}"
        ),
    )


def check_chunk_memory(chunk_size: int, n_cells: int, n_input_genes: int, n_model_genes: int) -> None:
    """Refuse a predict chunk whose dense copies (the input's genes, then the model's aligned and
    z-scored) cannot fit in the available RAM, before any cell is read."""
    rows = min(chunk_size, n_cells)
    need = FLOAT * rows * (n_input_genes + 2 * n_model_genes)
    free = available_bytes(torch.device("cpu"))
    if need > free:
        most = max(1, int(free // (FLOAT * (n_input_genes + 2 * n_model_genes))))
        raise SSDAInputError(
            f"chunk size {chunk_size}",
            (
                f"{rows} cells × {n_input_genes} genes densified need about {need / GIB:,.1f} GiB but "
                f"{free / GIB:,.1f} GiB is available; use --chunk-size {min(most, 10_000)} or less"
            ),
        )
