"""SSDA4Drug: drug response transferred from bulk cell lines to single cells (PyTorch + AnnData)."""

import importlib
import os

# Idle OpenMP threads spin 1,000 turns before they sleep: the count libgomp itself falls back to
# when threads outnumber cores. Its default spin (300,000 turns) made two processes sharing the
# cores each >10× slower (issue 13), and longer spins slow a fit beside a busy foreign process;
# sleeping at once (OMP_WAIT_POLICY=PASSIVE) cost a lone fit ~25 % in waking threads between its
# small operators (docs/performance.md, "Two processes at once"). libgomp reads this once, when
# torch is first imported, so it is set here, before any ssda_model module imports torch; a wait
# policy or spin count of your own wins. Entry points (ssda, Dagster, the pipeline) import
# ssda_model first.
OPENMP_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # a user's own one of these wins
OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000"}
OPENMP_SET_ON_IMPORT = {} if os.environ.keys() & set(OPENMP_WAIT_SETTINGS) else dict(OPENMP_DEFAULTS)
os.environ.update(OPENMP_SET_ON_IMPORT)

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
