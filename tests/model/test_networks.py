import pytest
import torch
from torch.nn import functional as F

from ssda_model.config import SSDAConfig
from ssda_model.module.ensemble import SSDAEnsemble
from ssda_model.module.losses import (
    adversarial_loss,
    adversarial_perturbation,
    entropy,
    mask_input,
    minimax_entropy_loss,
    per_domain_cross_entropy,
)
from ssda_model.module.networks import SSDANet, grad_reverse

pytestmark = pytest.mark.numerics  # rerun with oneDNN and ATen capped at AVX2 (Makefile: test)


def net_and_batch(n_genes=40, batch=8):
    torch.manual_seed(0)
    return SSDANet(n_genes, SSDAConfig()), torch.randn(batch, n_genes)


def ensemble_and_batch(members=2, n_genes=40, batch=8):
    generators = [torch.Generator().manual_seed(s) for s in range(members)]
    net = SSDAEnsemble.seeded(n_genes, SSDAConfig(), list(range(members)), generators, torch.device("cpu"))
    return net, torch.randn(members, batch, n_genes, generator=torch.Generator().manual_seed(9))


def test_shapes_follow_the_spec_defaults():
    net, x = net_and_batch()
    latent = net.encoder(x)
    assert latent.shape == (8, 128)
    assert net.decoder(latent).shape == (8, 40)
    assert net.features(x).shape == (8, 32)
    assert net(x).shape == (8, 2)
    assert net.classifier.fc.bias is None
    linear_widths = [m.out_features for m in net.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert linear_widths == [512, 256, 128]


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    (grad_reverse(x, 0.7) * 2.0).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -1.4))


def test_prototype_logits_are_cosine_over_temperature():
    net, x = net_and_batch()
    net.eval()
    features = net.features(x)
    prototypes = net.classifier.fc.weight
    cosine = F.normalize(features, dim=1) @ prototypes.T
    assert torch.allclose(net(x), cosine / 0.05, atol=1e-5)


def test_adversarial_perturbation_has_norm_epsilon_per_sample():
    net, x = ensemble_and_batch()
    y = torch.tensor([[0, 1] * 4] * 2)
    r = adversarial_perturbation(net, x, y, epsilon=0.5)
    assert torch.allclose(r.norm(dim=-1), torch.full((2, 8), 0.5), atol=1e-5)
    assert not torch.equal(r[0, 0], r[0, 1])


def test_mask_copies_and_leaves_the_input_untouched():
    x = torch.ones(200, 50)
    masked = mask_input(x, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones(200, 50))
    zero_share = (masked == 0).float().mean().item()
    assert 0.17 < zero_share < 0.23
    again = mask_input(x, 0.2, torch.Generator().manual_seed(1))
    assert not torch.equal(masked, again)


def test_eval_mode_predictions_are_deterministic():
    net, x = net_and_batch()
    net.eval()
    assert torch.equal(net.sensitivity(x), net.sensitivity(x))
    net.train()
    assert not torch.equal(net.features(x), net.features(x))  # dropout is on in training only


def test_minimax_entropy_moves_classifier_and_features_in_opposite_directions():
    net, x = ensemble_and_batch()
    features = net.features(x).detach().requires_grad_(True)
    loss = minimax_entropy_loss(net, features, eta=1.0).sum()
    loss.backward()
    prototype_grad = net.classifier.fc.weight.grad.clone()
    # Without reversal the features would receive +∂(-H)/∂f; with it they receive the opposite.
    plain = features.detach().requires_grad_(True)
    (-entropy(net.classifier(plain)).sum()).backward()
    assert torch.allclose(features.grad, -plain.grad, atol=1e-6)
    assert prototype_grad.abs().sum() > 0


def test_per_domain_cross_entropy_weighs_the_source_mean_against_the_shots_mean():
    """ssda_prior: 32 bulk rows beside 2 shots count 0.1 × their mean, not 32/34 of one mean."""
    logits, labels = torch.randn(2, 34, 2), torch.randint(0, 2, (2, 34))
    loss = per_domain_cross_entropy(logits, labels, n_source=32, source_weight=0.1)
    for r in range(2):
        source = F.cross_entropy(logits[r, :32], labels[r, :32])
        shots = F.cross_entropy(logits[r, 32:], labels[r, 32:])
        assert torch.isclose(loss[r], 0.1 * source + shots)
        assert not torch.isclose(loss[r], F.cross_entropy(logits[r], labels[r]))


def test_per_domain_cross_entropy_takes_one_source_weight_per_member():
    """ssda_auto: each member's bulk mean counts the weight its own repetition chose."""
    logits, labels = torch.randn(2, 34, 2), torch.randint(0, 2, (2, 34))
    loss = per_domain_cross_entropy(logits, labels, n_source=32, source_weight=torch.tensor([0.0, 0.1]))
    for r, weight in enumerate((0.0, 0.1)):
        alone = per_domain_cross_entropy(logits[r : r + 1], labels[r : r + 1], 32, weight)
        assert torch.isclose(loss[r], alone[0])
    assert torch.isclose(loss[0], F.cross_entropy(logits[0, 32:], labels[0, 32:]))


def test_a_zero_bulk_weight_keeps_the_bulk_labels_out_of_the_adversarial_term():
    """ssda_auto: a bulk it does not trust (weight 0) teaches through neither labeled term; the
    shots' part of the loss is the same whatever the bulk's labels say."""
    net, x = ensemble_and_batch()
    y = torch.tensor([[0, 1] * 4] * 2)
    flipped = y.clone()
    flipped[:, :6] = 1 - flipped[:, :6]  # the 6 bulk rows' labels, the 2 shots' kept

    def per_domain(logits, labels):
        return per_domain_cross_entropy(logits, labels, n_source=6, source_weight=torch.tensor([0.0, 0.0]))

    net.eval()  # no dropout: the same forward twice
    trusted = adversarial_loss(net, x, y, 1.0, per_domain)
    distrusted = adversarial_loss(net, x, flipped, 1.0, per_domain)
    assert torch.allclose(trusted, distrusted, atol=1e-6)
    assert not torch.allclose(adversarial_loss(net, x, y, 1.0), adversarial_loss(net, x, flipped, 1.0))
