"""The one place the compute device and the training precision are chosen."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ssda_model.errors import SSDAInputError

_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX-512 / AMX, Arm BF16 ("Features" line)
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) below which it has no bf16 kernel and PyTorch falls back
# to an emulated product ~1,000x slower than fp32 (2.4 s against 2.8 ms for 256 x 3,000 x 512).
_ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; an unknown name, or 'cuda' without a GPU, is the
    user's input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SSDAInputError("device", f"expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SSDAInputError("device", f"{name!r} requested but no CUDA device is available")
    return device


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo"), max_isa: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 in hardware for us. Without such units, or with oneDNN
    capped below them (`ONEDNN_MAX_CPU_ISA`, read when `max_isa` is None), bf16 matmuls are
    emulated and far slower than fp32, so `auto` must not pick bf16 there. Linux reports the
    units in /proc/cpuinfo; elsewhere we cannot tell and answer no."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "") if max_isa is None else max_isa
    if isa.strip().upper() in _ISAS_WITHOUT_BF16:
        return False
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    lines = (line for line in text.splitlines() if line.startswith(("flags", "Features")))
    return any(_BF16_CPU_FLAGS & set(line.split(":", 1)[-1].split()) for line in lines)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' → bf16 on a GPU that supports it or a CPU with bf16 units, else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
