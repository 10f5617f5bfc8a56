"""The SSDA4Drug network: denoising autoencoder, predictor and cosine prototype classifier
(docs/method.md, Defaults)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ssda_model.config import SSDAConfig


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by -eta backward (minimax entropy between F and C)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eta: float) -> torch.Tensor:
        ctx.eta = eta
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.eta * grad, None


def grad_reverse(x: torch.Tensor, eta: float = 1.0) -> torch.Tensor:
    """`x` forward; the gradient times −`eta` backward (the domain-adversarial trick)."""
    return GradientReversal.apply(x, eta)


def _dense_block(n_in: int, n_out: int, dropout: float) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU(), nn.Dropout(dropout)]


class Encoder(nn.Module):
    """G genes → latent code; hidden layers Linear→BN→ReLU→Dropout, plain Linear at the end."""

    def __init__(self, n_genes: int, dims: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = (n_genes, *dims)
        for n_in, n_out in zip(widths[:-2], widths[1:-1], strict=True):
            layers += _dense_block(n_in, n_out, dropout)
        layers.append(nn.Linear(widths[-2], widths[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent code → G genes, mirroring the encoder (first layer plain Linear, as the reference)."""

    def __init__(self, n_genes: int, dims: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        widths = tuple(reversed(dims))  # e.g. 128, 256, 512
        layers: list[nn.Module] = []
        if len(widths) > 1:
            layers.append(nn.Linear(widths[0], widths[1]))
            for n_in, n_out in zip(widths[1:-1], widths[2:], strict=True):
                layers += _dense_block(n_in, n_out, dropout)
        layers.append(nn.Linear(widths[-1], n_genes))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Predictor(nn.Module):
    """Latent code → the 32-d feature the prototypes live in."""

    def __init__(self, latent_dim: int, feature_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, feature_dim), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PrototypeClassifier(nn.Module):
    """Cosine classifier: logits = W·f/‖f‖ / T; the rows of W are the class prototypes
    (0 = resistant, 1 = sensitive)."""

    def __init__(self, feature_dim: int, temperature: float, n_classes: int = 2) -> None:
        super().__init__()
        self.fc = nn.Linear(feature_dim, n_classes, bias=False)
        self.temperature = temperature

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(F.normalize(features, dim=1)) / self.temperature


class SSDANet(nn.Module):
    """Encoder E, decoder D, predictor P and classifier C; the feature extractor 𝓕 is P∘E."""

    def __init__(self, n_genes: int, config: SSDAConfig) -> None:
        super().__init__()
        self.encoder = Encoder(n_genes, config.encoder_dims, config.dropout)
        self.decoder = Decoder(n_genes, config.encoder_dims, config.dropout)
        self.predictor = Predictor(config.latent_dim, config.predictor_dim, config.dropout)
        self.classifier = PrototypeClassifier(config.predictor_dim, config.temperature)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of a clean (unmasked) input."""
        return self.classifier(self.features(x))

    def sensitivity(self, x: torch.Tensor) -> torch.Tensor:
        """P(sensitive) per sample."""
        return torch.softmax(self(x), dim=1)[:, 1]
