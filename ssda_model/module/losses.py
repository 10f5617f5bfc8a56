"""The loss terms of SSDA4Drug (paper eq. 1–6) and the denoising mask.

Tensors carry the ensemble's members on their first axis, (R, batch, ...), and every term returns
one value per member, (R,): member r's own mean over its own batch. The trainer back-propagates
their sum; the members share no term, so member r's weights get exactly the gradient of its own
loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ssda_model.module.ensemble import SSDAEnsemble, member_keep_masks
from ssda_model.module.networks import grad_reverse


def mask_members(x: torch.Tensor, rate: float, generators: list[torch.Generator]) -> torch.Tensor:
    """A copy of (R, B, G) x with each entry zeroed with probability `rate`, member r's mask drawn
    from generators[r]; x itself is never touched."""
    if rate <= 0:
        return x.clone()
    return x * member_keep_masks(x.shape, rate, generators, x.device)


def mask_input(x: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """`mask_members` for one (B, G) batch."""
    return mask_members(x.unsqueeze(0), rate, [generator or torch.default_generator])[0]


def member_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member of (R, B, C) logits against (R, B) labels."""
    per_sample = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    return per_sample.view(labels.shape).mean(dim=1)


def per_domain_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, n_source: int, source_weight: float | torch.Tensor
) -> torch.Tensor:
    """The shots' mean cross-entropy plus `source_weight` (one, or one per member) times the
    source's, per member, from labeled rows that hold the `n_source` source lines first: the bulk
    as a prior, not a majority."""
    source = member_cross_entropy(logits[:, :n_source], labels[:, :n_source])
    return source_weight * source + member_cross_entropy(logits[:, n_source:], labels[:, n_source:])


def reconstruction_loss(net: SSDAEnsemble, clean: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """L_reco: MSE between the clean input and the decoder's reconstruction of the noisy one."""
    return F.mse_loss(net.decoder(latent).float(), clean, reduction="none").mean(dim=(1, 2))


def adversarial_perturbation(
    net: SSDAEnsemble, x: torch.Tensor, y: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """r_adv = ε·g/‖g‖₂ per sample, g = ∇ₓ KL(q(y) ‖ p(y|x)); q is one-hot so KL equals cross-entropy."""
    x_probe = x.detach().requires_grad_(True)
    with net.input_gradient_only():
        divergence = F.cross_entropy(net(x_probe).flatten(0, 1), y.flatten(), reduction="sum")
    (grad,) = torch.autograd.grad(divergence, x_probe)
    norms = grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (epsilon * grad / norms).detach()


def adversarial_loss(
    net: SSDAEnsemble,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    cross_entropy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = member_cross_entropy,
) -> torch.Tensor:
    """L_adv = KL(q(y) ‖ p(y | x + r_adv)) on labeled samples, averaged by `cross_entropy` (one
    mean, or per domain as the classification loss is)."""
    return cross_entropy(net(x + adversarial_perturbation(net, x, y, epsilon)), y)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) per member of the softmax of each row."""
    p = torch.softmax(logits, dim=-1)
    return -(p * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean(dim=-1)


def minimax_entropy_loss(net: SSDAEnsemble, unlabeled_features: torch.Tensor, eta: float) -> torch.Tensor:
    """L_mme as -H through a gradient-reversal layer.

    Minimising -H moves C's prototypes to maximise the entropy of unlabeled cells; the reversed
    gradient makes 𝓕 minimise it, clustering cells around the prototypes.
    """
    return -entropy(net.classifier(grad_reverse(unlabeled_features, eta)))
