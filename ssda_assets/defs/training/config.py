"""trained_model's run config, derived from `SSDAConfig`: the method's defaults are set in one place.

The platform changes one default on purpose: `protocol = "strict"` (the epoch is chosen on source
validation, so no target label steers training). `SSDA_TRAIN_DEFAULTS`, a JSON object of these
fields (e.g. '{"epochs": 5}'), changes the defaults of a deployment: trainings that automation
launches carry no run config, so this is how a small installation or a test makes them small.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from ssda_assets import settings
from ssda_model.config import Method, Precision, Protocol, Scaling, SSDAConfig
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

    max_target_cells: int = Field(
        default=20_000,
        description="Cells the training sees at most: above it a seeded sample stratified by label and "
        "time point (0: every cell). Every cell is scored either way.",
    )

    def to_ssda(self) -> SSDAConfig:
        values = self.model_dump()
        values.pop("max_target_cells")
        shots = values.pop("shots")
        return SSDAConfig(shots=shots if shots == "all" else int(shots), **values)


def _deployment_defaults() -> dict[str, Any]:
    text = settings.train_defaults()
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


# The launchpad shows these under each field; choices are Literal types, shown as a drop-down.
DESCRIPTIONS = {
    "method": "ssda_auto: the paper's losses with the bulk as a prior, weighted by how far it agrees "
    "with the shots; ssda_prior: the same at a fixed weight of 0.1; ssda: the paper's method as "
    "published; ssda_no_adv / ssda_no_mme: ablations; source_only / target_only: "
    "baselines (bulk alone, shots alone).",
    "shots": 'Labeled target cells per class given to the training: a positive integer, or "all" '
    "(every labeled cell is a shot; the model is then scored on the source validation split).",
    "repetitions": "Independent repetitions (seeds 1..R), each with its own shots; the model is their "
    "ensemble and AUC is reported as mean ± std over them.",
    "protocol": "strict: the epoch is chosen on source validation, so no target label steers training; "
    "paper: as published (labeled target cells choose the epoch).",
    "epochs": "Training epochs per repetition; the best epoch is kept.",
    "batch_size": "Samples per mini-batch and domain.",
    "lr": "Learning rate of the optimiser.",
    "lambda_mme": "Weight of the minimax-entropy loss on unlabeled cells.",
    "epsilon": "Norm of the adversarial input perturbation, in z-score units.",
    "scaling": "per_domain: z-score source and target genes separately; joint: one scaler for both.",
    "device": 'Where to train: "auto" (a GPU when present), "cpu", "cuda" or "cuda:N".',
    "precision": "auto: bf16 where the CPU has bf16 units or on a GPU, else fp32; fp32; bf16 (autocast "
    "training steps, fp32 weights and scores).",
    "batch_repetitions": "Train the repetitions together as one batched ensemble (faster, same result).",
}
CHOICES: dict[str, Any] = {"method": Method, "protocol": Protocol, "scaling": Scaling, "precision": Precision}


def _train_config() -> type[_TrainConfigBase]:
    """A dg.Config class with SSDAConfig's defaults, then the platform's and the deployment's; each
    field described, the choices as Literal types (the launchpad's drop-downs). `shots` stays a
    string: Dagster's config has no union of an integer and "all"."""
    defaults = (
        {name: getattr(SSDAConfig(), name) for name in FIELDS} | PLATFORM_DEFAULTS | _deployment_defaults()
    )
    defaults["shots"] = str(defaults["shots"])
    kinds = {
        name: CHOICES.get(name, type(value) if isinstance(value, (bool, int, float)) else str)
        for name, value in defaults.items()
    }
    fields: dict[str, Any] = {
        name: (kinds[name], Field(default=defaults[name], description=DESCRIPTIONS[name])) for name in FIELDS
    }
    return create_model("TrainConfig", __base__=_TrainConfigBase, **fields)


TrainConfig = _train_config()
