"""Attribution of P(sensitive): the fast IG path against captum's, SHAP against shap's own run."""

import numpy as np
import pytest
import torch
from torch import nn

from ssda_model.analysis.attribution import integrated_gradients, shap_values
from ssda_model.model import SSDAModel
from tests.helpers import FAST

pytestmark = pytest.mark.numerics  # rerun with oneDNN and ATen capped at AVX2 (Makefile: test)


@pytest.fixture(
    scope="module",
    params=[FAST, FAST.replace(encoder_dims=(32,), predictor_dim=32)],
    ids=["three_layers", "one_layer"],
)  # one layer: no Linear between the first ReLU and the classifier
def fitted(request, small_pair) -> tuple[SSDAModel, np.ndarray]:
    source, target = small_pair
    model = SSDAModel.fit(source, target, request.param.replace(epochs=2))
    x, _ = model.align(target)
    return model, x[:40]


class _MeanOfNetworks(nn.Module):
    """The ensemble score as the previous path built it: one SSDANet after the other."""

    def __init__(self, model: SSDAModel) -> None:
        super().__init__()
        self.nets = nn.ModuleList(model.networks("cpu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net.sensitivity(x) for net in self.nets]).mean(dim=0).unsqueeze(1)


def test_integrated_gradients_equal_captums(fitted):
    from captum.attr import IntegratedGradients

    model, x = fitted
    cells = torch.as_tensor(x, dtype=torch.float32)
    expected, expected_gap = IntegratedGradients(_MeanOfNetworks(model).eval()).attribute(
        cells,
        baselines=torch.zeros_like(cells),
        target=0,
        n_steps=256,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    ig, gaps, steps = integrated_gradients(model, x, n_steps=256, max_gap=None, path_points_per_chunk=7 * 256)
    # A quadrature node that lands within rounding of a ReLU's kink can fall on either side under
    # the two paths' summation orders (the ensemble batched, captum's nets one by one), moving that
    # one cell's attributions by the node's share: at most one cell of the 40, by under 1e-3.
    difference = np.abs(ig - expected.detach().numpy())
    assert (difference.max(axis=1) > 1e-5).sum() <= 1 and difference.max() < 1e-3, difference.max(axis=1)
    gap_difference = np.abs(gaps - expected_gap.detach().numpy())
    assert (gap_difference > 1e-5).sum() <= 1 and gap_difference.max() < 1e-3, gap_difference
    assert np.abs(gaps).max() < 0.01
    assert (steps == 256).all()


def test_adaptive_steps_refine_only_the_cells_above_the_gap(fitted):
    """From 4 steps, cells whose gap is still ≥ 0.01 are integrated again with twice the steps:
    every gap ends below 0.01, and each cell's attributions are the fixed-step ones at its count."""
    model, x = fitted
    ig, gaps, steps = integrated_gradients(model, x, n_steps=4, max_gap=0.01)
    assert np.abs(gaps).max() < 0.01
    assert steps.min() == 4 and steps.max() > 4
    for n in np.unique(steps):
        fixed, fixed_gaps, _ = integrated_gradients(model, x[steps == n], n_steps=int(n), max_gap=None)
        np.testing.assert_allclose(ig[steps == n], fixed, atol=1e-6)
        np.testing.assert_allclose(gaps[steps == n], fixed_gaps, atol=1e-6)
        if n > 4:  # refined because the count before did not reach the gap
            _, coarse_gaps, _ = integrated_gradients(model, x[steps == n], n_steps=int(n) // 2, max_gap=None)
            assert (np.abs(coarse_gaps) >= 0.01).all()


def test_shap_values_equal_gradient_explainers_own_run(fitted):
    import shap

    model, x = fitted
    background = x[::3]
    explainer = shap.GradientExplainer(_MeanOfNetworks(model).eval(), torch.as_tensor(background))
    expected = explainer.shap_values(torch.as_tensor(x[:10]), rseed=7)
    values = shap_values(model, x[:10], background, seed=7)
    np.testing.assert_allclose(values, np.asarray(expected).reshape(values.shape), atol=1e-6)
    np.testing.assert_array_equal(values, shap_values(model, x[:10], background, seed=7))
