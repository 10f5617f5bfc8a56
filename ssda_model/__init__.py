"""SSDA4Drug: drug response transferred from bulk cell lines to single cells (PyTorch + AnnData)."""

import importlib
import os

# Idle OpenMP threads sleep instead of spinning, so processes sharing the cores do not slow each
# other down >10× (issue 13; ssda_model.threads shares the cores). libgomp reads this once, when
# torch is first imported, so it is set here, before any ssda_model module imports torch; an
# explicit setting wins. Entry points (ssda, Dagster, the pipeline) import ssda_model first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["SSDAConfig", "SSDAInputError", "SSDAModel"]
_HOMES = {
    "SSDAConfig": "ssda_model.config",
    "SSDAInputError": "ssda_model.errors",
    "SSDAModel": "ssda_model.model",
}


def __getattr__(name: str) -> object:
    """`ssda_model.SSDAModel` and the other public names, imported on first use: importing the
    package stays light (the command line starts fast, torch loads only when needed)."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'ssda_model' has no attribute {name!r}")
