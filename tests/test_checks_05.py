"""The checks of notebook 05 (the Grad-CAM++ homework): right answers pass, planted mistakes get their hint."""

import numpy as np
import pytest

from tinycam import reference
from tinycam.course import checks, lecture

from check_harness import check_tests

EXAMPLE = lecture.worked_example()


def _alphas_general(acts, d2, d3):
    denominator = 2 * d2 + np.sum(acts, axis=(-1, -2))[..., None, None] * d3
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, d2 / safe)


def _closed_form_cancelled(acts, grads):
    """1 / (2 + ΣA·g) where g ≠ 0, and 0 where g = 0: the same α, written after cancelling g²."""
    total = np.asarray(acts).sum(axis=(-2, -1), keepdims=True)
    denominator = 2.0 + total * grads
    ok = (grads != 0) & (denominator != 0)
    return np.where(ok, 1.0 / np.where(ok, denominator, 1.0), 0.0)


# exercise -> a correct answer (written differently from the reference where possible)
CORRECT = {
    "gradcampp_alphas_general": _alphas_general,
    "exp_score_derivatives": lambda grads, score: (np.exp(score) * np.square(grads), np.exp(score) * grads**3),
    "gradcampp_alpha_closed_form": _closed_form_cancelled,
    "gradcampp_weights_from_alphas": lambda alphas, grads: np.einsum("...ij,...ij->...", alphas,
                                                                     np.clip(grads, 0, None)),
}


def _hard_coded(value):
    return lambda *args: np.array(value)


def _blind(numerator, denominator):
    """numerator / denominator divided blindly: NaN (0/0) or inf where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _with_nan(acts, grads):
    """g² / (2g² + ΣA g³) divided blindly: NaN where g = 0."""
    return _blind(grads**2, 2 * grads**2 + np.asarray(acts).sum(axis=(-2, -1), keepdims=True) * grads**3)


def _eps(acts, grads, eps=1e-6):
    total = np.asarray(acts).sum(axis=(-2, -1), keepdims=True)
    return grads**2 / (2 * grads**2 + total * grads**3 + eps)


EXAMPLE_ALPHAS = reference.gradcampp_alphas(EXAMPLE["acts"], EXAMPLE["grads"])

# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "gradcampp_alphas_general": [
        (lambda a, d2, d3: d2 / (d2 + a.sum(axis=(-2, -1), keepdims=True) * d3), "a 2 in front of d2"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a * d3), "every pixel (a, b)"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-3, -2, -1), keepdims=True) * d3), "not over all the maps"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3 + 1e-6), "no ε"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3), "no NaN"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3 + 1e-12), "no ε"),  # any size
        (lambda a, d2, d3: _blind(d2, 2 * d2 - a.sum(axis=(-2, -1), keepdims=True) * d3), "check the sign"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a.mean(axis=(-2, -1), keepdims=True) * d3), "no 1/Z"),
        (_hard_coded(EXAMPLE_ALPHAS), "α is the second derivative"),  # the visible example's answer
    ],
    "exp_score_derivatives": [
        (lambda g, s: (g**2, g**3), "keeps the factor exp(S)"),
        (lambda g, s: (s * g**2, s * g**3), "not S"),
        (lambda g, s: (np.exp(s) * g, np.exp(s) * g**2), "count the derivatives"),
        (lambda g, s: (np.exp(s) * g**3, np.exp(s) * g**2), "(second derivative, third derivative)"),
        (lambda g, s: np.exp(s) * g**2, "differentiate exp(S)"),  # only the second derivative
        (_hard_coded([np.exp(2.0) * EXAMPLE["grads"] ** 2, np.exp(2.0) * EXAMPLE["grads"] ** 3]), "return the pair"),
    ],
    "gradcampp_alpha_closed_form": [
        (_eps, "no ε"),
        (lambda a, g: _eps(a, g, eps=1e-7), "no ε"),  # a smaller epsilon is still wrong
        (lambda a, g: _eps(a, g, eps=1e-12), "no ε"),  # and a tiny one, where the gradients are ~1e-6
        (lambda a, g: 1.0 / (2.0 + np.asarray(a).sum(axis=(-2, -1), keepdims=True) * g), "cancelling g²"),
        (lambda a, g: g**2 / (g**2 + a.sum(axis=(-2, -1), keepdims=True) * g**3), "twice the squared gradient"),
        (lambda a, g: g**2 / (2 * g**2 + a * g**3), "every pixel (a, b)"),
        (lambda a, g: g**2 / (2 * g**2 + a.sum(axis=(-3, -2, -1), keepdims=True) * g**3), "not over all the maps"),
        (_with_nan, "no NaN"),
        (lambda a, g: _blind(1.0, 2.0 - np.asarray(a).sum(axis=(-2, -1), keepdims=True) * g) * (g != 0), "the sign"),
        (lambda a, g: _blind(g**2, 2 * g**2 + np.asarray(a).mean(axis=(-2, -1), keepdims=True) * g**3), "no 1/Z"),
        (_hard_coded(EXAMPLE_ALPHAS), "the factor exp(S) cancels"),
    ],
    "gradcampp_weights_from_alphas": [
        (lambda al, g: (al * g).sum(axis=(-2, -1)), "only the positive gradients"),
        (lambda al, g: (al * np.maximum(g, 0)).mean(axis=(-2, -1)), "do not average"),
        (lambda al, g: (al * np.maximum(g, 0)).sum(axis=-3), "keeping one weight per feature map"),
        (lambda al, g: np.mean(g, axis=(-2, -1)), "not Grad-CAM's mean"),
        (lambda al, g: np.maximum(al * g, 0).sum(axis=(-2, -1)), "positive part of the gradient alone"),
        (lambda al, g: np.einsum("...ij,...ij->...", al / al.sum(axis=(-2, -1), keepdims=True), np.maximum(g, 0)),
         "normalizing α to sum to 1 over each map"),
        (_hard_coded([1.391, 0.782, 0.197]), "one weight per map"),
    ],
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_cases_are_drawn_from_the_seed_and_start_with_the_handwritten_example(name):
    cases = checks.EXERCISES[name].cases
    first, again, other = cases(7), cases(7), cases(8)
    assert "handwritten" in first[0][0] and len(first) >= 5
    for (_, args), (_, args_again), (_, args_other) in zip(first[1:], again[1:], other[1:], strict=True):
        arrays = [np.asarray(x) for x in args if np.ndim(x) > 0]
        assert all(x.dtype == np.float64 and x.ndim in (3, 4) for x in arrays)
        assert all(np.array_equal(x, y) for x, y in zip(args, args_again, strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(args, args_other, strict=True))


def test_random_cases_hold_exact_zero_gradients_and_a_small_gradient_case():
    cases = checks.EXERCISES["gradcampp_alpha_closed_form"].cases(0)
    assert all((grads == 0).any() for _, (_, grads) in cases[1:])
    assert any(0 < np.abs(grads).max() < 1e-2 for _, (_, grads) in cases)  # where an epsilon of 1e-6 shows


def test_the_visible_examples_are_the_handwritten_numbers():
    acts, grads = EXAMPLE["acts"], EXAMPLE["grads"]
    alphas = _closed_form_cancelled(acts, grads)
    # map 1: ΣA = 2.1, g = 2 -> 1 / (2 + 4.2); map 3: ΣA = 3, g = 0.2 -> 1 / 2.6
    assert alphas[0, 0, 0] == pytest.approx(1 / 6.2) and alphas[2, 1, 0] == pytest.approx(1 / 2.6)
    weights = CORRECT["gradcampp_weights_from_alphas"](alphas, grads)
    np.testing.assert_allclose(weights, [1.3912, 0.7824, 0.1973], atol=1e-4)
    (_, (_, d2, d3)) = checks.EXERCISES["gradcampp_alphas_general"].cases(0)[0]
    np.testing.assert_allclose(_alphas_general(acts, d2, d3), alphas, rtol=1e-12)


globals().update(check_tests("05", CORRECT, WRONG))
