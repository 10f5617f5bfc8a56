"""Hyper-parameters of SSDA4Drug in one frozen dataclass; the reference code's defaults (docs/method.md)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

Method = Literal[
    "ssda_blend",
    "ssda",
    "ssda_auto",
    "ssda_prior",
    "ssda_no_adv",
    "ssda_no_mme",
    "source_only",
    "target_only",
]
Protocol = Literal["paper", "strict"]
Scaling = Literal["per_domain", "joint"]
Optimizer = Literal["adagrad", "adam", "sgd"]
Precision = Literal["auto", "fp32", "bf16"]

METHODS: tuple[str, ...] = get_args(Method)
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
SCALINGS: tuple[str, ...] = get_args(Scaling)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
PRECISIONS: tuple[str, ...] = get_args(Precision)


@dataclass(frozen=True)
class SSDAConfig:
    """Network, loss weights, optimiser and protocol settings of one fit.

    `shots` is the number of labeled target cells per class, or "all" for the production case
    (every labeled cell is a shot and no target evaluation is possible).
    """

    encoder_dims: tuple[int, ...] = (512, 256, 128)
    predictor_dim: int = 32
    dropout: float = 0.3
    noise_rate: float = 0.2  # probability of zeroing an input entry (denoising mask)
    temperature: float = 0.05
    lambda_mme: float = 0.1
    eta: float = 1.0  # gradient-reversal strength
    epsilon: float = 1.0  # adversarial perturbation norm, z-score units
    optimizer: Optimizer = "adagrad"
    lr: float = 1e-3
    epochs: int = 50
    batch_size: int = 32
    # ssda_blend: per repetition, the mean P(sensitive) of ssda_auto's network and one trained on the
    # shots alone (target_only), a hedge against a bulk whose labels cost (docs/method.md);
    # ssda_auto: the paper's losses with the bulk as a prior whose weight (0 to ssda_prior's 0.1) each
    # repetition takes from how far the bulk agrees with its shots; ssda: the paper's method as published
    method: Method = "ssda_blend"
    shots: int | Literal["all"] = 3
    repetitions: int = 5
    protocol: Protocol = "paper"
    scaling: Scaling = "per_domain"
    val_fraction: float = 0.2
    device: str = "auto"
    # bf16: autocast the training steps (fp32 master weights, fp32 model files and scores);
    # auto: bf16 where the CPU has bf16 units or on a GPU, else fp32 (train/device.py)
    precision: Precision = "auto"
    batch_repetitions: bool = True  # train the repetitions together as one batched ensemble

    def __post_init__(self) -> None:
        checks = [
            (self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {self.method!r}"),
            (
                self.protocol in PROTOCOLS,
                f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}",
            ),
            (self.scaling in SCALINGS, f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}"),
            (
                self.precision in PRECISIONS,
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
            ),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
            ),
            (
                self.shots == "all" or (isinstance(self.shots, int) and self.shots >= 1),
                f"shots must be a positive integer or 'all', got {self.shots!r}",
            ),
            (self.repetitions >= 1, f"repetitions must be >= 1, got {self.repetitions}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}"),
            (0.0 <= self.noise_rate < 1.0, f"noise_rate must be in [0, 1), got {self.noise_rate}"),
            (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (len(self.encoder_dims) >= 1, "encoder_dims needs at least one layer"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "encoder_dims", tuple(int(d) for d in self.encoder_dims))

    @property
    def latent_dim(self) -> int:
        return self.encoder_dims[-1]

    def replace(self, **changes: Any) -> SSDAConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["encoder_dims"] = list(self.encoder_dims)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SSDAConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        values = dict(data)
        if "encoder_dims" in values:
            values["encoder_dims"] = tuple(values["encoder_dims"])
        return cls(**values)
