"""SSDA4Drug: drug response transferred from bulk cell lines to single cells (PyTorch + AnnData)."""

import os

# Idle OpenMP threads sleep instead of spinning, so processes sharing the cores do not slow each
# other down >10× (issue 13; ssda_model.threads shares the cores). libgomp reads this once, when
# torch is first imported, so it is set here, before any ssda_model module imports torch; an
# explicit setting wins. Entry points (ssda, Dagster, the pipeline) import ssda_model first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ssda_model.config import SSDAConfig  # noqa: E402  (after the wait policy is set)
from ssda_model.errors import SSDAInputError  # noqa: E402
from ssda_model.model import SSDAModel  # noqa: E402

__all__ = ["SSDAConfig", "SSDAInputError", "SSDAModel"]
