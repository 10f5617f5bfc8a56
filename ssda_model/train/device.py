"""The one place the compute device is chosen."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; an explicit 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but no CUDA device is available")
    return device
