"""The default method, `ssda_blend`: in each repetition, the mean P(sensitive) of two networks
trained on the same split, shots and seed, one with the bulk (`ssda_auto`) and one on the shots
alone (`target_only`).

Why: no statistic read before training tells a bulk whose labels help at several shots from one
whose labels cost (docs/method.md, "The default: hedged against the bulk"), and each of the two
fails where the other holds: the bulk's network drifts or collapses on some cases at 3–5 shots,
the shots alone know little at 1. Their mean stays near the better one where the other fails.

A repetition's weights are one state dict whose keys carry the member's method as a prefix
(``ssda_auto.encoder.net.0.weight``), so a model folder keeps one file per repetition.
"""

from __future__ import annotations

import torch

from ssda_model.config import SSDAConfig
from ssda_model.module.networks import SSDANet

BLEND = "ssda_blend"
BLEND_MEMBERS = ("ssda_auto", "target_only")  # the bulk's network first: its choice is the one recorded


def member_methods(method: str) -> tuple[str, ...]:
    """The methods whose networks a repetition of `method` averages: two for the blend, else itself."""
    return BLEND_MEMBERS if method == BLEND else (method,)


def join_states(method: str, states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One repetition's member state dicts as one (prefixed by member for the blend)."""
    if method != BLEND:
        (state,) = states
        return state
    return {f"{m}.{k}": v for m, s in zip(BLEND_MEMBERS, states, strict=True) for k, v in s.items()}


def split_state(method: str, state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The inverse of `join_states`: each member's state dict, in `member_methods` order."""
    if method != BLEND:
        return [state]
    return [
        {k.removeprefix(f"{m}."): v for k, v in state.items() if k.startswith(f"{m}.")} for m in BLEND_MEMBERS
    ]


def member_networks(
    n_genes: int, config: SSDAConfig, state: dict[str, torch.Tensor], device: torch.device
) -> list[SSDANet]:
    """One repetition's member networks, loaded from its state dict, in eval mode on `device`."""
    nets = []
    for member in split_state(config.method, state):
        net = SSDANet(n_genes, config).to(device)
        net.load_state_dict(member)
        nets.append(net.eval())
    return nets


def state_shapes(n_genes: int, config: SSDAConfig) -> dict[str, tuple[int, ...]]:
    """Every key's shape in a repetition's state dict (built on the meta device: no memory)."""
    with torch.device("meta"):
        one = SSDANet(n_genes, config).state_dict()
    members = member_methods(config.method)
    shapes = join_states(config.method, [one] * len(members))
    return {k: tuple(v.shape) for k, v in shapes.items()}
