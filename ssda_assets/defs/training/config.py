"""trained_model's run config, derived from `SSDAConfig`: the method's defaults are set in one place.

The platform changes one default on purpose: `protocol = "strict"` (the epoch is chosen on source
validation, so no target label steers training). `SSDA_TRAIN_DEFAULTS`, a JSON object of these
fields (e.g. '{"epochs": 5}'), changes the defaults of a deployment: trainings that automation
launches carry no run config, so this is how a small installation or a test makes them small.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dagster as dg
from pydantic import create_model

from ssda_model.config import SSDAConfig
from ssda_model.errors import SSDAInputError

FIELDS = (
    "method",
    "shots",
    "repetitions",
    "protocol",
    "epochs",
    "batch_size",
    "lr",
    "lambda_mme",
    "epsilon",
    "scaling",
    "device",
    "precision",
    "batch_repetitions",
)
PLATFORM_DEFAULTS = {"protocol": "strict"}
TRAIN_DEFAULTS = "SSDA_TRAIN_DEFAULTS"


class _TrainConfigBase(dg.Config):
    """Hyper-parameters of a training run; change them in the launchpad to relaunch. `shots` is a
    number of labeled cells per class or "all"; the rest are `SSDAConfig`'s fields, but for
    `max_target_cells`: above it the training sees a seeded sample of the cells stratified by
    label and time point (0: every cell), so its memory stays bounded; every cell is scored."""

    max_target_cells: int = 20_000

    def to_ssda(self) -> SSDAConfig:
        values = self.model_dump()
        values.pop("max_target_cells")
        shots = values.pop("shots")
        return SSDAConfig(shots=shots if shots == "all" else int(shots), **values)


def _deployment_defaults() -> dict[str, Any]:
    text = os.environ.get(TRAIN_DEFAULTS, "").strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict) or set(values) - set(FIELDS):
        raise SSDAInputError(
            TRAIN_DEFAULTS, f"expected a JSON object of the fields {', '.join(FIELDS)}, got {text!r}"
        )
    return values


def _train_config() -> type[_TrainConfigBase]:
    """A dg.Config class with SSDAConfig's defaults (strings for the choices: Dagster's config
    types have no Literal), then the platform's and the deployment's."""
    defaults = (
        {name: getattr(SSDAConfig(), name) for name in FIELDS} | PLATFORM_DEFAULTS | _deployment_defaults()
    )
    defaults["shots"] = str(defaults["shots"])
    kinds = {
        name: type(value) if isinstance(value, (bool, int, float)) else str
        for name, value in defaults.items()
    }
    fields: dict[str, Any] = {name: (kinds[name], defaults[name]) for name in FIELDS}
    return create_model("TrainConfig", __base__=_TrainConfigBase, **fields)


TrainConfig = _train_config()
