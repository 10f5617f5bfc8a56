"""Which genes drive a cell's score: integrated gradients and SHAP (expected gradients, as shap's
GradientExplainer computes them).

Both explain the ensemble score P(sensitive) = mean over the repetitions' models, as a function
of the z-scored input, so the all-zero profile (every gene at its training mean) is the baseline.

IG runs the 256 path points of many cells as one batch and uses the shape of the network: up to
the first ReLU it is affine, so along the path α·x its pre-activation is u(α) = α·p + q with
p, q computed once per cell; each ReLU unit then switches at most once along the path, so the
next layer's input needs only the switching points (a running sum of weight columns), not one
product per step; and the gradients summed over the path go back to genes in one product.
Only the small layers behind the second one run per path point.
"""

import anndata as ad
import numpy as np
import pandas as pd
import torch
from torch import nn

from ssda_model.model import SSDAModel
from ssda_model.module.ensemble import SSDAEnsemble, StackedDropout, StackedLinear
from ssda_model.threads import share_cores

SHAP_SAMPLES = 200  # GradientExplainer's default: background draws per explained cell


class EnsembleSensitivity(nn.Module):
    """z-scored cells (n, genes) → mean P(sensitive) over the fitted models, shape (n, 1).

    The members run stacked (`SSDAEnsemble`: one batched matmul per layer for all of them), in
    eval mode, split where IG needs them: `affine` up to the first ReLU, the `second` layer's
    weight (members, width, width2) and bias behind it (the identity when no Linear follows),
    and the `tail` after that.
    """

    affine: nn.Sequential
    second_weight: torch.Tensor
    second_bias: torch.Tensor
    tail: nn.Sequential

    def __init__(self, model: SSDAModel) -> None:
        super().__init__()
        nets = model.networks("cpu")
        stacked = SSDAEnsemble(nets, [torch.Generator() for _ in nets]).eval().requires_grad_(False)
        layers = [*stacked.encoder.net.children(), *stacked.predictor.net.children(), stacked.classifier]
        relu = next(i for i, layer in enumerate(layers) if isinstance(layer, nn.ReLU))
        self.affine = nn.Sequential(*layers[:relu])
        rest = [
            layer for layer in layers[relu + 1 :] if not isinstance(layer, StackedDropout)
        ]  # identity in eval
        second = rest[0]
        if isinstance(second, StackedLinear):
            rest.pop(0)
            self.second_weight, self.second_bias = second.weight, second.bias
        else:
            width = self.affine(torch.zeros(len(nets), 1, len(model.genes))).shape[-1]
            self.second_weight = torch.eye(width).expand(len(nets), width, width)
            self.second_bias = torch.zeros(len(nets), width)
        self.tail = nn.Sequential(*rest)
        self.n_members = len(nets)

    def behind_second(self, hidden: torch.Tensor) -> torch.Tensor:
        """P(sensitive), shape (n,), from the second layer's output (members, n, width2)."""
        return torch.softmax(self.tail(hidden), dim=-1)[..., 1].mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.affine(x.expand(self.n_members, *x.shape)))
        return self.behind_second(
            torch.baddbmm(self.second_bias.unsqueeze(1), hidden, self.second_weight)
        ).unsqueeze(1)


def gauss_legendre(n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (ascending) and weights of the n-point Gauss–Legendre rule on [0, 1], as captum's."""
    points, weights = np.polynomial.legendre.leggauss(n_steps)
    return (
        torch.as_tensor(0.5 * (points + 1), dtype=torch.float32),
        torch.as_tensor(0.5 * weights, dtype=torch.float32),
    )


def _switch_steps(
    p: torch.Tensor, q: torch.Tensor, alphas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each unit α·p + q > 0 switches along the ascending path points: `rising` units are
    active from step `switch` on, the others (p ≤ 0) up to step `switch` (excluded)."""
    rising = p > 0
    threshold = (-q / torch.where(p == 0, 1.0, p)).contiguous()
    switch = torch.where(
        rising, torch.searchsorted(alphas, threshold, right=True), torch.searchsorted(alphas, threshold)
    )
    return torch.where(p == 0, torch.where(q > 0, len(alphas), 0), switch), rising


def _running_sum(x: torch.Tensor) -> torch.Tensor:
    """In-place cumulative sum over axis 1; torch's cumsum over a middle axis is ~10× slower than
    adding whole contiguous rows one step at a time."""
    for k in range(1, x.shape[1]):
        x[:, k] += x[:, k - 1]
    return x


def _path_gradient(
    ensemble: EnsembleSensitivity,
    p: torch.Tensor,
    q: torch.Tensor,
    alphas: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Σ_k w_k ∂P/∂u at u = α_k·p + q, the first ReLU's input: (members, cells, width).

    Path tensors are laid out (members, steps, cells, ·) so that sums over steps add contiguous blocks."""
    members, cells, width = p.shape
    n_steps, weight, bias = len(alphas), ensemble.second_weight, ensemble.second_bias
    q = q.expand_as(p)
    switch, rising = _switch_steps(p, q, alphas)
    sign = rising.float() * 2 - 1
    rows = (
        (torch.arange(members).view(members, 1, 1) * (n_steps + 1) + switch) * cells
        + torch.arange(cells).view(1, cells, 1)
    ).flatten()  # in (members, steps + 1, cells); step n_steps: never
    # the second layer along the path is α_k·A_k + B_k: running sums of p_j·W_j and q_j·W_j over the
    # active units,
    # starting from the units active at step 0 (the falling ones) and changing where a unit switches
    pq = torch.stack([p, q], dim=-1)  # (members, cells, width, 2)
    switches = torch.zeros(members, n_steps + 1, cells, 2, weight.shape[2])
    switches[:, 0] = torch.einsum("mcjt,mjd->mctd", pq * ~rising.unsqueeze(-1), weight)
    columns = (pq * sign.unsqueeze(-1)).unsqueeze(-1) * weight.view(members, 1, width, 1, -1)
    switches.view(-1, 2, weight.shape[2]).index_add_(0, rows, columns.flatten(0, 2))
    slope, offset = _running_sum(switches)[:, :n_steps].unbind(dim=3)
    hidden = (alphas[:, None, None] * slope + offset + bias[:, None, None]).view(members, n_steps * cells, -1)
    hidden.requires_grad_()
    (grad,) = torch.autograd.grad(ensemble.behind_second(hidden).sum(), hidden)
    # back through the ReLU: unit j collects the weighted gradients of its active steps only
    prefix = torch.zeros(members, n_steps + 1, cells, grad.shape[2])
    torch.mul(grad.view(members, n_steps, cells, -1), weights[:, None, None], out=prefix[:, 1:])
    prefix = _running_sum(prefix)
    before_switch = torch.einsum(
        "mcjd,mjd->mcj", prefix.flatten(0, 2)[rows].view(members, cells, width, -1), weight
    )
    whole_path = torch.bmm(prefix[:, -1], weight.transpose(1, 2))
    return torch.where(rising, whole_path - before_switch, before_switch)


def integrated_gradients(
    model: SSDAModel, x: np.ndarray, n_steps: int = 256, cells_per_chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """IG attributions (cells × genes) of P(sensitive) against the all-zero baseline, and the
    completeness gap per cell (sum of attributions − (score(x) − score(0))), in P units.

    The cosine classifier with T = 0.05 makes the path integrand sharp: 256 Gauss–Legendre steps
    keep the gap < 0.01. The result equals captum's IntegratedGradients(method="gausslegendre").
    """
    ensemble = EnsembleSensitivity(model).eval()
    alphas, weights = gauss_legendre(n_steps)
    cells = torch.as_tensor(x, dtype=torch.float32)
    members = ensemble.n_members
    with torch.no_grad():
        q = ensemble.affine(torch.zeros(members, 1, cells.shape[1]))  # the baseline's pre-activation
        gaps = ensemble(torch.zeros(1, cells.shape[1]))[:, 0] - ensemble(cells)[:, 0]
    attributions = torch.empty_like(cells)
    with share_cores():
        for start in range(0, len(cells), cells_per_chunk):
            chunk = cells[start : start + cells_per_chunk].clone().requires_grad_()
            u = ensemble.affine(chunk.expand(members, *chunk.shape))
            path = _path_gradient(ensemble, u.detach() - q, q, alphas, weights)
            (to_genes,) = torch.autograd.grad(u, chunk, grad_outputs=path)  # the affine part's transpose
            attributions[start : start + cells_per_chunk] = chunk.detach() * to_genes
    gaps += attributions.sum(dim=1)
    return attributions.numpy(), gaps.numpy()


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
        for start in range(0, len(cells), per_chunk):
            chunk = cells[start : start + per_chunk, None, :]
            drawn = references[torch.as_tensor(picks[start : start + per_chunk])]
            alpha = torch.as_tensor(alphas[start : start + per_chunk, :, None])
            points = (alpha * chunk + (1 - alpha) * drawn).flatten(0, 1).requires_grad_()
            (grad,) = torch.autograd.grad(ensemble(points).sum(), points)
            values[start : start + per_chunk] = (grad.view(drawn.shape) * (chunk - drawn)).mean(dim=1)
    return values.numpy()


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
