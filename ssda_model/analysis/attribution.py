"""Which genes drive a cell's score: integrated gradients and SHAP (expected gradients, as shap's
GradientExplainer computes them).

Both explain the ensemble score P(sensitive) = mean over the repetitions' models, as a function
of the z-scored input, so the all-zero profile (every gene at its training mean) is the baseline.

Both use the shape of the network: up to the first ReLU it is affine (Linear, then batch norm in
eval mode), folded here into one matrix A and offset c. A point between two profiles therefore
has the pre-activation between theirs, so no path point or SHAP draw runs the first (largest)
layer, and gradients go back to genes in one product with A per cell. IG's steps adapt per cell:
a cell whose completeness gap is not yet below the target is integrated again with twice the steps."""

import anndata as ad
import numpy as np
import pandas as pd
import torch
from torch import nn

from ssda_model.model import SSDAModel
from ssda_model.module.ensemble import SSDAEnsemble, StackedBatchNorm, StackedDropout, StackedLinear
from ssda_model.threads import share_cores

SHAP_SAMPLES = 200  # GradientExplainer's default: background draws per explained cell


class EnsembleSensitivity(nn.Module):
    """z-scored cells (n, genes) → mean P(sensitive) over the fitted models, shape (n, 1).

    The members run stacked (`SSDAEnsemble`: one batched matmul per layer for all of them), in
    eval mode, in two parts: the layers up to the first ReLU folded into `first_weight`
    (members, genes, width) and `first_bias` (members, width), and the layers behind it.
    """

    first_weight: torch.Tensor
    first_bias: torch.Tensor
    behind: nn.Sequential

    def __init__(self, model: SSDAModel) -> None:
        super().__init__()
        nets = model.networks("cpu")
        stacked = SSDAEnsemble(nets, [torch.Generator() for _ in nets]).eval().requires_grad_(False)
        layers = [*stacked.encoder.net.children(), *stacked.predictor.net.children(), stacked.classifier]
        relu = next(i for i, layer in enumerate(layers) if isinstance(layer, nn.ReLU))
        self.first_weight, self.first_bias = _fold(layers[:relu], len(model.genes))
        self.n_members = len(nets)
        # (members · width, genes): the transpose of every member's A side by side, for one product
        self.first_weight_t = self.first_weight.transpose(1, 2).reshape(-1, len(model.genes)).contiguous()
        self.behind = nn.Sequential(*layers[relu:])

    def first(self, x: torch.Tensor) -> torch.Tensor:
        """The first ReLU's input, (members, n, width), for cells x (n, genes)."""
        return torch.baddbmm(
            self.first_bias.unsqueeze(1), x.expand(self.n_members, *x.shape), self.first_weight
        )

    def to_genes(self, grad: torch.Tensor) -> torch.Tensor:
        """Gradients at the first ReLU's input (members, n, width) → at the genes (n, genes)."""
        return grad.permute(1, 0, 2).reshape(grad.shape[1], -1) @ self.first_weight_t

    def behind_first(self, u: torch.Tensor) -> torch.Tensor:
        """P(sensitive), shape (n,), from the first ReLU's input (members, n, width)."""
        return torch.softmax(self.behind(u), dim=-1)[..., 1].mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.behind_first(self.first(x)).unsqueeze(1)


def _fold(layers: list[nn.Module], n_genes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stacked layers before the first ReLU (Linear, eval-mode batch norm, in any number) as
    x ↦ x·A + c."""
    weight, bias = None, None
    for layer in layers:
        if isinstance(layer, StackedLinear):
            w = layer.weight.detach()
            b = torch.zeros(w.shape[0], w.shape[2]) if layer.bias is None else layer.bias.detach()
            weight = w if weight is None else torch.bmm(weight, w)
            bias = b if bias is None else torch.baddbmm(b.unsqueeze(1), bias.unsqueeze(1), w).squeeze(1)
        elif isinstance(layer, StackedBatchNorm) and weight is not None and bias is not None:
            scale = torch.rsqrt(layer.running_var + layer.eps) * layer.weight.detach()
            weight = weight * scale.unsqueeze(1)
            bias = (bias - layer.running_mean) * scale + layer.bias.detach()
        elif not isinstance(layer, StackedDropout):  # identity in eval
            raise TypeError(f"cannot fold {type(layer).__name__} into the first affine map")
    if weight is None or bias is None or weight.shape[1] != n_genes:
        raise TypeError("the network does not start with a Linear layer on the genes")
    return weight.contiguous(), bias.contiguous()


def gauss_legendre(n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (ascending) and weights of the n-point Gauss–Legendre rule on [0, 1], as captum's."""
    points, weights = np.polynomial.legendre.leggauss(n_steps)
    return (
        torch.as_tensor(0.5 * (points + 1), dtype=torch.float32),
        torch.as_tensor(0.5 * weights, dtype=torch.float32),
    )


def _path_gradient(
    ensemble: EnsembleSensitivity,
    p: torch.Tensor,
    q: torch.Tensor,
    alphas: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Σ_k w_k ∂P/∂u at u = α_k·p + q, the first ReLU's input: (members, cells, width)."""
    members, cells, width = p.shape
    u = (alphas.view(1, -1, 1, 1) * p.unsqueeze(1) + q.unsqueeze(1)).view(members, -1, width).requires_grad_()
    (grad,) = torch.autograd.grad(ensemble.behind_first(u).sum(), u)
    return torch.einsum("k,mkcw->mcw", weights, grad.view(members, len(alphas), cells, width))


def integrated_gradients(
    model: SSDAModel,
    x: np.ndarray,
    n_steps: int = 32,
    max_gap: float | None = 0.01,
    max_steps: int = 2048,
    path_points_per_chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IG attributions (cells × genes) of P(sensitive) against the all-zero baseline, the
    completeness gap per cell (sum of attributions − (score(x) − score(0))), in P units, and the
    Gauss–Legendre steps each cell took.

    Every cell starts at `n_steps`; while a cell's |gap| ≥ `max_gap`, it is integrated again with
    twice the steps, up to `max_steps` (`max_gap=None`: every cell takes `n_steps`). The cosine
    classifier with T = 0.05 makes the integrand sharp near a few cells' decision boundary, so a
    fixed count would spend on every cell what those few need. At a given step count the result
    equals captum's IntegratedGradients(method="gausslegendre").
    """
    ensemble = EnsembleSensitivity(model).eval()
    cells = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        q = ensemble.first(torch.zeros(1, cells.shape[1]))  # the baseline's pre-activation
        score_gaps = ensemble(torch.zeros(1, cells.shape[1]))[:, 0] - ensemble(cells)[:, 0]
    attributions = torch.empty_like(cells)
    gaps = torch.empty(len(cells))
    steps = np.zeros(len(cells), dtype=np.int64)
    todo = torch.arange(len(cells))
    with share_cores(), torch.no_grad():
        while len(todo):
            alphas, weights = gauss_legendre(n_steps)
            per_chunk = max(1, path_points_per_chunk // n_steps)
            for start in range(0, len(todo), per_chunk):
                rows = todo[start : start + per_chunk]
                with torch.enable_grad():
                    path = _path_gradient(ensemble, ensemble.first(cells[rows]) - q, q, alphas, weights)
                attributions[rows] = cells[rows] * ensemble.to_genes(path)
            gaps[todo] = score_gaps[todo] + attributions[todo].sum(dim=1)
            steps[todo.numpy()] = n_steps
            n_steps *= 2
            if max_gap is None or n_steps > max_steps:
                break
            todo = todo[gaps[todo].abs() >= max_gap]
    return attributions.numpy(), gaps.numpy(), steps


def shap_values(
    model: SSDAModel,
    x: np.ndarray,
    background: np.ndarray,
    seed: int = 0,
    samples: int = SHAP_SAMPLES,
    rows_per_chunk: int = 4096,
) -> np.ndarray:
    """SHAP values (cells × genes) of P(sensitive) by expected gradients, as shap's GradientExplainer
    computes them: per cell, `samples` draws of a `background` cell b and of α ~ U(0, 1), and the
    mean of ∇P(b + α(x − b)) ⊙ (x − b).

    The draws are GradientExplainer's own (NumPy's legacy generator seeded with `seed`, a background
    row then α, cell after cell), so the values equal shap's; but the draws of many cells run as one
    batch, where shap runs one cell at a time. The cost still grows as cells × draws × the network,
    so callers cap the cells explained.
    """
    draws = np.random.RandomState(seed)
    picks = np.empty((len(x), samples), dtype=np.int64)
    alphas = np.empty((len(x), samples), dtype=np.float32)
    for j in range(len(x)):
        for k in range(samples):
            picks[j, k], alphas[j, k] = draws.choice(len(background)), draws.uniform()
    ensemble = EnsembleSensitivity(model).eval()
    cells = torch.as_tensor(x, dtype=torch.float32)
    references = torch.as_tensor(background, dtype=torch.float32)
    values = torch.empty_like(cells)
    per_chunk = max(1, rows_per_chunk // samples)
    with share_cores():
        with torch.no_grad():  # the points' pre-activations mix these, so no point runs the first layer
            u_cells, u_references = ensemble.first(cells), ensemble.first(references)
        for start in range(0, len(cells), per_chunk):
            picked = torch.as_tensor(picks[start : start + per_chunk])
            alpha = torch.as_tensor(alphas[start : start + per_chunk, :, None])
            u = alpha * u_cells[:, start : start + per_chunk, None] + (1 - alpha) * u_references[:, picked]
            u = u.flatten(1, 2).requires_grad_()
            (grad,) = torch.autograd.grad(ensemble.behind_first(u).sum(), u)
            with torch.no_grad():
                values[start : start + per_chunk] = _mean_times_difference(
                    ensemble, grad, picked, cells[start : start + per_chunk], references
                )
    return values.numpy()


def _mean_times_difference(
    ensemble: EnsembleSensitivity,
    grad: torch.Tensor,
    picked: torch.Tensor,
    cells: torch.Tensor,
    references: torch.Tensor,
) -> torch.Tensor:
    """mean_k ∇P(draw k) ⊙ (x − b_k) per cell, from the draws' gradients at the first ReLU's input
    (members, cells · draws, width) and the background rows they picked (cells, draws).

    Written as x ⊙ mean_k ∇_k − mean_k ∇_k ⊙ b_k, and the second sum taken per background row, so the
    product back to the genes runs once per (cell, picked row), about 0.63 of the draws at 200
    draws from 200 rows, not once per draw."""
    members, _, width = grad.shape
    n_cells, draws = picked.shape
    per_cell = grad.view(members, n_cells, draws, width)
    pairs, which = torch.unique(
        picked + len(references) * torch.arange(n_cells)[:, None], return_inverse=True
    )
    per_pair = torch.zeros(members, len(pairs), width).index_add_(1, which.flatten(), grad)
    drawn_part = torch.zeros_like(cells).index_add_(
        0, pairs // len(references), ensemble.to_genes(per_pair) * references[pairs % len(references)]
    )
    return (cells * ensemble.to_genes(per_cell.sum(dim=2)) - drawn_part) / draws


GROUPS = ("sensitive", "resistant")


def attribution_summary(
    ig: np.ndarray, shap: np.ndarray, shap_rows: np.ndarray, groups: np.ndarray, genes: list[str]
) -> pd.DataFrame:
    """Per gene: mean |IG| and mean |SHAP| in each predicted group, and mean |IG| over all cells.
    `shap` holds the rows `shap_rows` of the cells; `groups` each cell's predicted label."""
    ig_abs, shap_abs = pd.DataFrame(np.abs(ig), columns=genes), pd.DataFrame(np.abs(shap), columns=genes)
    summary = pd.DataFrame(
        {f"ig_{g}": ig_abs[groups == g].mean() for g in GROUPS}
        | {f"shap_{g}": shap_abs[groups[shap_rows] == g].mean() for g in GROUPS}
    )
    summary["ig_all"] = ig_abs.mean()
    return summary


def key_genes(
    ig: np.ndarray, groups: np.ndarray, genes: list[str], min_log2fc: float, max_padj: float
) -> pd.DataFrame:
    """Genes that weigh more in one group's predictions: Wilcoxon rank_genes_groups of each group
    against the other on |IG| (it reads its input as non-negative; signed IG gave negative means
    and NaN fold changes), kept where log2FC > `min_log2fc` and adjusted p < `max_padj`."""
    import scanpy as sc

    if len(set(groups)) < 2:
        return pd.DataFrame()
    cells = pd.DataFrame({"group": groups}, index=[str(i) for i in range(len(groups))])
    magnitudes = ad.AnnData(X=np.abs(ig).astype(np.float32), obs=cells, var=pd.DataFrame(index=genes))
    sc.tl.rank_genes_groups(magnitudes, "group", method="wilcoxon")
    ranked = pd.concat([sc.get.rank_genes_groups_df(magnitudes, group=g).assign(group=g) for g in GROUPS])
    return ranked[(ranked["logfoldchanges"] > min_log2fc) & (ranked["pvals_adj"] < max_padj)]
