"""Grad-CAM++'s closed form equals the general α formula with exact 2nd/3rd derivatives of Y = exp(S) whenever S is
piecewise linear in A, and drifts from it when it is not."""

import numpy as np
import pytest
import torch
from torch import nn

from tinycam import reference as R
from tinycam import torch_reference
from tinycam.derivatives import diagonal_derivatives, exp_score


def random_head(seed, K, smooth=None):
    """A random head on A (K, 4, 4): conv-ReLU-maxpool-linear-ReLU-linear (piecewise linear), or with a smooth
    activation instead of the ReLUs."""
    torch.manual_seed(seed)
    act = {None: nn.ReLU, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}[smooth]
    return nn.Sequential(
        nn.Conv2d(K, 5, 3, padding=1), act(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(20, 6), act(), nn.Linear(6, 3),
    ).double()


def exact_and_closed(seed, K=3, smooth=None, c=1):
    head = random_head(seed, K, smooth)
    acts = torch.rand(K, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 100))

    def score(a):
        return head(a[None])[0, c]

    d1, d2, d3 = diagonal_derivatives(exp_score(score, acts), acts)
    g = diagonal_derivatives(score, acts, order=1)[0]  # ∂S/∂A
    return acts, g, torch_reference.gradcampp_alphas_from_derivatives(acts, d2, d3), torch_reference.gradcampp_alphas(acts, g)


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_equals_the_exact_general_formula_for_piecewise_linear_heads(seed):
    acts, g, exact, closed = exact_and_closed(seed)
    torch.testing.assert_close(closed, exact, rtol=1e-10, atol=1e-10)
    # and the NumPy reference agrees with both
    np.testing.assert_allclose(R.gradcampp_alphas(acts.numpy(), g.numpy()), exact.numpy(), rtol=1e-10, atol=1e-10)
    assert bool((closed[g == 0] == 0).all())  # α = 0 exactly where g = 0 (dead ReLUs give exact zeros)


def test_derivatives_are_the_exponential_identities():
    head = random_head(0, 3)
    acts = torch.rand(3, 4, 4, dtype=torch.float64)

    def score(a):
        return head(a[None])[0, 0]

    d1, d2, d3 = diagonal_derivatives(exp_score(score, acts), acts)
    g = diagonal_derivatives(score, acts, order=1)[0]
    # Y = exp(S − S(acts)) = 1 at acts, so ∂ⁿY = gⁿ exactly
    for n, d in enumerate([d1, d2, d3], 1):
        torch.testing.assert_close(d, g**n, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("smooth", ["softplus", "sigmoid"])
def test_closed_form_drifts_when_the_head_is_smooth(smooth):
    _, _, exact, closed = exact_and_closed(0, smooth=smooth)
    assert float((closed - exact).abs().max()) > 1e-3  # the assumption matters: this is not rounding


def test_no_nan_or_inf_for_zero_tiny_or_huge_scores():
    acts = torch.rand(2, 3, 4, 4, dtype=torch.float32)
    for grads in [torch.zeros_like(acts), torch.full_like(acts, 1e-8), torch.rand_like(acts) * 1e-8]:
        for fn in (torch_reference.gradcampp_alphas, torch_reference.gradcampp_weights, torch_reference.gradcampp):
            assert bool(torch.isfinite(fn(acts, grads)).all())
    # the closed form never forms exp(S): a score of 1000 is no problem, while exp(1000.) overflows float32
    assert torch.isinf(torch.exp(torch.tensor(1000.0)))
    assert bool(torch.isfinite(torch_reference.gradcampp(acts, torch.rand_like(acts))).all())


def test_an_absolute_epsilon_would_bias_small_gradients():
    # what the public implementations compute: g² / (2g² + ΣA g³ + 1e-6) (or with the epsilon only where 0)
    acts = torch.rand(3, 4, 4, dtype=torch.float64)
    grads = torch.rand(3, 4, 4, dtype=torch.float64) * 1e-3
    ours = torch_reference.gradcampp_weights(acts, grads)
    with_eps = ((grads**2 / (2 * grads**2 + acts.sum((-2, -1), keepdim=True) * grads**3 + 1e-6)) * grads.relu()).sum((-2, -1))
    assert float(((with_eps - ours).abs() / ours).max()) > 0.05  # several percent off
    # while ours is exactly scale-consistent: α(A/s, g·s) = α(A, g)
    torch.testing.assert_close(torch_reference.gradcampp_alphas(acts * 1e3, grads * 1e-3), torch_reference.gradcampp_alphas(acts, grads))


def test_diagonal_derivatives_rejects_integer_input():
    with pytest.raises(ValueError, match="floating-point"):
        diagonal_derivatives(lambda a: a.sum(), torch.ones(2, 2, dtype=torch.int64))
