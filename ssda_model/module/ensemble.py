"""R SSDA networks trained as one: stacked weights and batched matmuls (issue #7).

Every tensor carries the members on its first axis: inputs are (R, batch, genes), a Linear's
weight is (R, in, out). Member r keeps its own weights, batch-norm statistics and dropout
generator, so it trains as it would alone; stacking only turns R small matmuls per layer into one
batched matmul and R optimiser loops into one. The module tree and state-dict keys mirror
`SSDANet`, so member r's slice of the state dict loads into an `SSDANet` for scoring and saving.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from ssda_model.config import SSDAConfig
from ssda_model.module.networks import SSDANet


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.bmm, except into a single column (a critic's or predictor's logit): there the BLAS
    matrix-vector kernel rounds differently with the number of members, which would break
    "member r trains the same alone or batched"; a product and a row sum do not."""
    if b.shape[-1] == 1:
        return (a * b.transpose(1, 2)).sum(-1, keepdim=True)
    return torch.bmm(a, b)


class _AccumulatingMatmul(torch.autograd.Function):
    """x @ weight whose weight gradient is written straight into `master.grad`.

    Autograd would allocate a fresh (R, in, out) gradient for every use of the weight and then add
    them up; at the first layer's size a fresh buffer per step costs page faults that halve the
    speed of the gradient matmul. Here the first use in a step overwrites the persistent buffer and
    later uses accumulate into it in place. `weight` is the master weight or its low-precision
    copy; the master is an input too, so that autograd records the node either way.
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        master: torch.Tensor,
        layer: StackedLinear,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        return _bmm(x, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        x, weight = ctx.saved_tensors
        ctx.layer.accumulate_weight_grad(x, grad)
        grad_x = torch.bmm(grad, weight.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        return grad_x, None, None, None


class StackedLinear(nn.Module):
    """R Linear layers: (R, B, in) → (R, B, out) with one batched matmul.

    The weight is stored (R, in, out), transposed from `nn.Linear`'s, so neither the forward
    matmul nor the weight gradient needs a transposed copy of the largest tensors. Its gradient
    lives in a buffer that persists across steps (see `_AccumulatingMatmul`): zero_grad sets
    `weight.grad` to None as usual, and the step's first gradient is written over the buffer.
    """

    def __init__(self, layers: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach().T for layer in layers]).contiguous())
        biases = [layer.bias for layer in layers]
        self.bias = nn.Parameter(torch.stack([b.detach() for b in biases])) if biases[0] is not None else None
        self.track_weight = True
        self._grad: torch.Tensor | None = None
        self._low: torch.Tensor | None = None  # low-precision copy of the weight, reused
        self._low_current = False  # whether _low holds this step's weight (see cast_weights)
        self._low_grad: torch.Tensor | None = None  # this backward pass's low-precision weight gradient
        self._low_pending: str | None = None  # how _low_grad goes into _grad at the pass's end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight: torch.Tensor = self.weight
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), self._low_precision_weight(dtype)
        with torch.autocast(x.device.type, enabled=False):
            if self.track_weight and self.weight.requires_grad and torch.is_grad_enabled():
                out = _AccumulatingMatmul.apply(x, weight, self.weight, self)
            else:
                out = _bmm(x, weight.detach())
            return out if self.bias is None else out + self.bias.to(out.dtype).unsqueeze(1)

    def _low_precision_weight(self, dtype: torch.dtype) -> torch.Tensor:
        if self._low_current and self._low is not None and self._low.dtype == dtype:
            return self._low
        return self.weight.detach().to(dtype)

    def cast_weight(self, dtype: torch.dtype) -> None:
        """Cast the weight once for every forward pass until `release_cast`."""
        if self._low is None or self._low.dtype != dtype:
            self._low = torch.empty(self.weight.shape, dtype=dtype, device=self.weight.device)
        self._low.copy_(self.weight.detach())
        self._low_current = True

    def release_cast(self) -> None:
        self._low_current = False

    def accumulate_weight_grad(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        x_t = x.transpose(1, 2)
        first = self.weight.grad is None  # the step's first use overwrites the buffer
        if self._grad is None:
            self._grad = torch.empty_like(self.weight)
        if grad.shape[-1] == 1:  # a single column: tiny, so no buffer to reuse
            product = _bmm(x_t, grad).to(self._grad.dtype)
            self.weight.grad = self._grad.copy_(product) if first else self._grad.add_(product)
            return
        if x.dtype != self.weight.dtype:
            self._accumulate_low_precision(x_t, grad, first)
            return
        if first:
            torch.bmm(x_t, grad, out=self._grad)
        else:
            self._grad.baddbmm_(x_t, grad)
        self.weight.grad = self._grad

    def _accumulate_low_precision(self, x_t: torch.Tensor, grad: torch.Tensor, first: bool) -> None:
        """Sum a backward pass's low-precision weight gradients in a reused low-precision buffer
        and convert them into the fp32 gradient once, when the backward pass ends: converting
        each use's product and adding it costs three passes over the largest weights per use."""
        if self._low_grad is None or self._low_grad.dtype != x_t.dtype:
            self._low_grad = torch.empty(self.weight.shape, dtype=x_t.dtype, device=x_t.device)
        if self._low_pending is None:
            torch.bmm(x_t, grad, out=self._low_grad)
            self._low_pending = "overwrite" if first else "add"
            torch.autograd.Variable._execution_engine.queue_callback(self._settle_low_grad)
        else:
            self._low_grad.baddbmm_(x_t, grad)
        self.weight.grad = self._grad

    def _settle_low_grad(self) -> None:
        grad, low = self._grad, self._low_grad
        assert grad is not None and low is not None  # set by the backward pass that left this pending
        if self._low_pending == "overwrite":
            grad.copy_(low)
        else:
            grad.add_(low)
        self._low_pending = None


class StackedBatchNorm(nn.Module):
    """R BatchNorm1d layers, each normalising over its own member's batch (same update rule)."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, layers: list[nn.BatchNorm1d]) -> None:
        super().__init__()
        self.eps, self.momentum = layers[0].eps, layers[0].momentum or 0.1  # our layers set it (0.1)
        self.weight = nn.Parameter(
            torch.stack([cast(torch.Tensor, layer.weight).detach() for layer in layers])
        )
        self.bias = nn.Parameter(torch.stack([cast(torch.Tensor, layer.bias).detach() for layer in layers]))
        self.register_buffer(
            "running_mean", torch.stack([cast(torch.Tensor, m.running_mean) for m in layers])
        )
        self.register_buffer("running_var", torch.stack([cast(torch.Tensor, m.running_var) for m in layers]))
        self.register_buffer(
            "num_batches_tracked", torch.stack([cast(torch.Tensor, m.num_batches_tracked) for m in layers])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[1] > 1:
            return self._train_as_one_layer(x)
        x = x.float()  # statistics in fp32 under bf16 autocast too, as BatchNorm1d keeps them
        if self.training:  # a batch of one row: BatchNorm1d refuses it, its variance is 0 here
            var, mean = torch.var_mean(x, dim=1, correction=0, keepdim=True)
            with torch.no_grad():
                n = x.shape[1]
                self.running_mean.lerp_(mean.squeeze(1), self.momentum)
                self.running_var.lerp_(var.squeeze(1) * n / max(n - 1, 1), self.momentum)
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean.unsqueeze(1), self.running_var.unsqueeze(1)
        scale = torch.rsqrt(var + self.eps) * self.weight.unsqueeze(1)
        return torch.addcmul(self.bias.unsqueeze(1) - mean * scale, x, scale)

    def _train_as_one_layer(self, x: torch.Tensor) -> torch.Tensor:
        """The R layers as one BatchNorm over R × width channels: (R, B, width) laid out as
        (B, R·width) in fp32, one copy, so PyTorch's fused batch-norm kernels compute the
        statistics, the running update and the backward pass. A reduction over the middle axis
        (torch.var_mean on (R, B, width)) ran about 3× slower forward and backward. Each
        channel's statistics still come from its own member's rows alone."""
        members, rows, width = x.shape
        flat = torch.empty((rows, members, width), dtype=torch.float32, device=x.device)
        flat.copy_(x.transpose(0, 1))
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
        out = F.batch_norm(
            flat.view(rows, members * width),
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.view(-1),
            self.bias.view(-1),
            training=True,
            momentum=self.momentum,
            eps=self.eps,
        )
        return out.view(rows, members, width).transpose(0, 1)


def member_keep_masks(
    shape: torch.Size, drop_rate: float, generators: list[torch.Generator], device: torch.device
) -> torch.Tensor:
    """Boolean keep-masks of shape (R, ...), member r's drawn from generators[r] alone.

    Each entry takes 16 random bits, four entries per 64-bit draw, and is dropped when they fall
    below round(rate·65536)/65536 (0.2 → 0.199997): a third of the cost of a float uniform per
    entry, the largest of the per-member draws.
    """
    n = math.prod(shape[1:])
    bits = torch.empty(len(generators), -(-n // 4), dtype=torch.int64, device=device)
    for member, generator in enumerate(generators):
        bits[member].random_(-(2**63), None, generator=generator)  # all 64 bits uniform
    threshold = -(2**15) + round(drop_rate * 2**16)
    return (bits.view(torch.int16)[:, :n] >= threshold).reshape(shape)


class StackedDropout(nn.Module):
    """Dropout whose mask for member r comes from member r's own generator.

    The generators make a member's masks independent of how many members train beside it.
    """

    def __init__(self, p: float, generators: list[torch.Generator]) -> None:
        super().__init__()
        self.p, self.generators = p, generators

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = member_keep_masks(x.shape, self.p, self.generators, x.device)
        return x * keep.to(x.dtype).mul_(1 / (1 - self.p))


def _stack(modules: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    first = modules[0]
    if isinstance(first, nn.Sequential):
        return nn.Sequential(
            *[_stack([cast(nn.Sequential, m)[i] for m in modules], generators) for i in range(len(first))]
        )
    if isinstance(first, nn.Linear):
        return StackedLinear(cast(list[nn.Linear], modules))
    if isinstance(first, nn.BatchNorm1d):
        return StackedBatchNorm(cast(list[nn.BatchNorm1d], modules))
    if isinstance(first, nn.Dropout):
        return StackedDropout(first.p, generators)
    if isinstance(first, nn.ReLU):
        return nn.ReLU()
    raise TypeError(f"no stacked form for {type(first).__name__}")


def stack_networks(networks: list[nn.ModuleDict], dropout_generators: list[torch.Generator]) -> nn.ModuleDict:
    """The stacked form of per-member networks made of `nn.Sequential`s of Linear, BatchNorm1d,
    ReLU and Dropout (the competitors' networks): same keys, members on the first axis."""
    return nn.ModuleDict(
        {key: _stack([net[key] for net in networks], dropout_generators) for key in networks[0]}
    )


def member_slice(net: nn.Module, member: int) -> dict[str, torch.Tensor]:
    """Copies of member r's slice of every weight and buffer, in the stacked layout."""
    return {key: value[member].clone() for key, value in net.state_dict().items()}


@torch.no_grad()
def load_member_slice(net: nn.Module, member: int, state: dict[str, torch.Tensor]) -> None:
    """Write a `member_slice` back into member r's place."""
    for key, value in net.state_dict().items():
        value[member].copy_(state[key])


@contextmanager
def cast_weights(net: nn.Module, dtype: torch.dtype | None) -> Iterator[None]:
    """Within one training step under autocast: cast each stacked weight to `dtype` once, not once
    per forward pass (an SSDA step runs three). None: nothing to cast (fp32)."""
    layers = [m for m in net.modules() if isinstance(m, StackedLinear)] if dtype is not None else []
    for layer in layers:
        layer.cast_weight(cast(torch.dtype, dtype))
    try:
        yield
    finally:
        for layer in layers:
            layer.release_cast()


class _Stage(nn.Module):
    """The stacked form of an Encoder, Decoder or Predictor (all of them wrap one `net`)."""

    def __init__(self, stages: list[nn.Module], generators: list[torch.Generator]) -> None:
        super().__init__()
        self.net = _stack([cast(nn.Module, stage.net) for stage in stages], generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StackedPrototypeClassifier(nn.Module):
    """Cosine classifier per member: logits = W_r·f/‖f‖ / T."""

    def __init__(self, classifiers: list[nn.Module]) -> None:
        super().__init__()
        self.fc = StackedLinear([cast(nn.Linear, c.fc) for c in classifiers])
        self.temperature = classifiers[0].temperature

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(F.normalize(features, dim=-1)) / self.temperature


class SSDAEnsemble(nn.Module):
    """Members built from `SSDANet`s (so member r starts from the weights seed r gives alone)."""

    def __init__(self, members: list[SSDANet], dropout_generators: list[torch.Generator]) -> None:
        super().__init__()
        self.encoder = _Stage([m.encoder for m in members], dropout_generators)
        self.decoder = _Stage([m.decoder for m in members], dropout_generators)
        self.predictor = _Stage([m.predictor for m in members], dropout_generators)
        self.classifier = StackedPrototypeClassifier([m.classifier for m in members])

    @classmethod
    def seeded(
        cls,
        n_genes: int,
        config: SSDAConfig,
        seeds: list[int],
        dropout_generators: list[torch.Generator],
        device: torch.device,
    ) -> SSDAEnsemble:
        """Member r initialised as `SSDANet` is after `torch.manual_seed(seeds[r])`."""
        members = []
        for seed in seeds:
            torch.manual_seed(seed)
            members.append(SSDANet(n_genes, config))
        return cls(members, dropout_generators).to(device)

    @contextmanager
    def input_gradient_only(self) -> Iterator[None]:
        """Forward passes whose backward is for the input only: no weight gradient is accumulated."""
        layers = [m for m in self.modules() if isinstance(m, StackedLinear)]
        for layer in layers:
            layer.track_weight = False
        try:
            yield
        finally:
            for layer in layers:
                layer.track_weight = True

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (R, B, 2) of a clean (unmasked) input."""
        return self.classifier(self.features(x))

    def sensitivity(self, x: torch.Tensor) -> torch.Tensor:
        """P(sensitive) (R, B)."""
        return torch.softmax(self(x), dim=-1)[..., 1]

    def member_state_dict(self, member: int) -> dict[str, torch.Tensor]:
        """Member r's weights as `SSDANet` keys and layouts (copies: safe to keep while training goes on)."""
        linear = {
            f"{name}.weight" for name, module in self.named_modules() if isinstance(module, StackedLinear)
        }
        return {
            key: value[member].T.contiguous() if key in linear else value[member].clone()
            for key, value in self.state_dict().items()
        }
