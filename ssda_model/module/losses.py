"""The loss terms of SSDA4Drug (paper eq. 1–6) and the denoising mask."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ssda_model.module.networks import SSDANet, grad_reverse


def mask_input(x: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of x with each entry zeroed with probability `rate`; x itself is never touched."""
    if rate <= 0:
        return x.clone()
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= rate
    return x * keep


def reconstruction_loss(net: SSDANet, clean: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """L_reco: MSE between the clean input and the decoder's reconstruction of the noisy one."""
    return F.mse_loss(net.decoder(latent), clean)


def adversarial_perturbation(net: SSDANet, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """r_adv = ε·g/‖g‖₂ per sample, g = ∇ₓ KL(q(y) ‖ p(y|x)); q is one-hot so KL equals cross-entropy."""
    x_probe = x.detach().requires_grad_(True)
    divergence = F.cross_entropy(net(x_probe), y, reduction="sum")
    (grad,) = torch.autograd.grad(divergence, x_probe)
    norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
    return (epsilon * grad / norms).detach()


def adversarial_loss(net: SSDANet, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """L_adv = KL(q(y) ‖ p(y | x + r_adv)) on labeled samples."""
    return F.cross_entropy(net(x + adversarial_perturbation(net, x, y, epsilon)), y)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax of each row."""
    p = torch.softmax(logits, dim=1)
    return -(p * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def minimax_entropy_loss(net: SSDANet, unlabeled_features: torch.Tensor, eta: float) -> torch.Tensor:
    """L_mme as -H through a gradient-reversal layer.

    Minimising -H moves C's prototypes to maximise the entropy of unlabeled cells; the reversed
    gradient makes 𝓕 minimise it, clustering cells around the prototypes.
    """
    return -entropy(net.classifier(grad_reverse(unlabeled_features, eta)))
