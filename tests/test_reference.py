"""The NumPy reference: the lecture's numbers exactly, and the equations' properties on random inputs."""

import ast
import pathlib
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinycam import reference as R
from tinycam.course import lecture

EXAMPLE = lecture.worked_example()
TIGHT = dict(rtol=0, atol=1e-12)


# --- the worked example (001) ---------------------------------------------------------------------------------


def test_lecture_alphas_are_the_gradient_averages():
    np.testing.assert_allclose(R.gradcam_weights(EXAMPLE["grads"]), [2.75, 4.25, 0.1], **TIGHT)
    np.testing.assert_allclose(R.gradcam_weights(EXAMPLE["grads"]), EXAMPLE["alphas"], **TIGHT)


def test_lecture_L_and_relu_L():
    L = R.weighted_combination(EXAMPLE["alphas"], EXAMPLE["acts"])
    np.testing.assert_allclose(L, [[8.925, -2.025], [16.125, 2.6]], **TIGHT)
    np.testing.assert_allclose(L, EXAMPLE["L"], **TIGHT)
    np.testing.assert_allclose(R.gradcam(EXAMPLE["acts"], EXAMPLE["grads"]), EXAMPLE["relu_L"], **TIGHT)


def test_lecture_counterfactual_keeps_only_the_negative_evidence():
    # with negated weights the map is ReLU(-L): only the pixel where L < 0 survives
    np.testing.assert_allclose(R.counterfactual_weights(EXAMPLE["grads"]), [-2.75, -4.25, -0.1], **TIGHT)
    np.testing.assert_allclose(R.counterfactual(EXAMPLE["acts"], EXAMPLE["grads"]), [[0, 2.025], [0, 0]], **TIGHT)


def test_lecture_cam_weights_from_gradients_are_Z_times_alpha():
    np.testing.assert_allclose(R.cam_weights_from_gradients(EXAMPLE["grads"]), [11.0, 17.0, 0.4], **TIGHT)


def test_lecture_gradcampp_by_hand():
    # pixel (0, 0) of A^1: g = 2, Σ_ab A^1_ab = 2.1  ->  α = 4 / (8 + 2.1 · 8) = 4 / 24.8
    alphas = R.gradcampp_alphas(EXAMPLE["acts"], EXAMPLE["grads"])
    assert alphas[0, 0, 0] == pytest.approx(4 / 24.8, abs=1e-15)
    # A^3 sums to 3; pixel (0, 1) has g = -0.1: α = 0.01 / (0.02 + 3 · (-0.001)) = 0.01 / 0.017
    assert alphas[2, 0, 1] == pytest.approx(0.01 / 0.017, abs=1e-15)
    # ... but its gradient is negative, so it adds nothing to w_3 = Σ α ReLU(g)
    w3 = sum(alphas[2].ravel()[i] * g for i, g in enumerate([0.1, -0.1, 0.2, 0.2]) if g > 0)
    assert R.gradcampp_weights(EXAMPLE["acts"], EXAMPLE["grads"])[2] == pytest.approx(w3, abs=1e-15)


# --- properties on random inputs ---------------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def acts_and_grads(draw, batch=True):
    shape = (
        *(draw(st.lists(st.integers(1, 3), max_size=2)) if batch else []),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
    )
    return draw(arrays(np.float64, shape, elements=finite)), draw(arrays(np.float64, shape, elements=finite))


@settings(max_examples=60, deadline=None)
@given(acts_and_grads())
def test_maps_are_nonnegative_and_shaped(ag):
    acts, grads = ag
    for method in (R.gradcam, R.counterfactual, R.gradcampp):
        m = method(acts, grads)
        assert m.shape == acts.shape[:-3] + acts.shape[-2:]
        assert np.all(m >= 0) and np.all(np.isfinite(m))


@settings(max_examples=60, deadline=None)
@given(acts_and_grads(), st.floats(0.01, 100))
def test_scaling_gradients_scales_alpha(ag, c):
    _, grads = ag
    np.testing.assert_allclose(R.gradcam_weights(c * grads), c * R.gradcam_weights(grads), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(acts_and_grads(), st.floats(0.01, 100))
def test_gradcampp_alphas_do_not_depend_on_the_gradient_scale_alone(ag, c):
    # α is homogeneous of degree 0 in (A, 1/g) jointly: scaling g by c and A by 1/c leaves α unchanged
    acts, grads = ag
    # stay away from the singular set 2 + Σ_ab A_ab · g = 0, where α is undefined (and set to 0)
    assume(np.all(np.abs(2 + acts.sum(axis=(-2, -1), keepdims=True) * grads) > 1e-6))
    # and from gradients whose cube underflows float64 (|g| < 1e-100: g² may survive as a subnormal while g³ is 0)
    assume(np.all((grads == 0) | (np.abs(grads) > 1e-100)))
    np.testing.assert_allclose(
        R.gradcampp_alphas(acts / c, grads * c), R.gradcampp_alphas(acts, grads), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(acts_and_grads())
def test_gradcampp_alpha_is_zero_where_gradient_is_zero(ag):
    acts, grads = ag
    grads = np.where(np.abs(grads) < 3, 0.0, grads)
    alphas = R.gradcampp_alphas(acts, grads)
    assert np.all(alphas[grads == 0] == 0)
    assert np.all(np.isfinite(alphas))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_gap_plus_linear_score_gives_the_class_weights_back(K, H, W, n_classes, seed):
    # Y^c = Σ_k w_k^c (1/Z) Σ_ij A^k_ij  =>  ∂Y^c/∂A^k_ij = w_k^c / Z everywhere
    rng = np.random.default_rng(seed)
    class_weights = rng.normal(size=(n_classes, K))
    grads = np.broadcast_to(class_weights[:, :, None, None] / (H * W), (n_classes, K, H, W))
    np.testing.assert_allclose(R.cam_weights_from_gradients(grads), class_weights, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(R.gradcam_weights(grads), class_weights / (H * W), rtol=1e-12, atol=1e-14)
    # and so Grad-CAM is CAM up to the positive factor 1/Z (before the ReLU)
    acts = rng.normal(size=(K, H, W))
    for c in range(n_classes):
        np.testing.assert_allclose(
            R.weighted_combination(R.gradcam_weights(grads[c]), acts) * (H * W), R.cam(acts, class_weights[c]),
            rtol=1e-10, atol=1e-12,
        )


def test_gradcampp_with_tiny_gradients_has_no_epsilon_bias():
    # g ~ 1e-8: any absolute epsilon in the denominator (2g² ~ 2e-16) would dominate and shrink α
    rng = np.random.default_rng(0)
    acts = rng.uniform(0, 1, size=(2, 3, 3))
    grads = rng.uniform(0.5, 1.0, size=(2, 3, 3))
    np.testing.assert_allclose(
        R.gradcampp_alphas(acts / 1e-8, grads * 1e-8), R.gradcampp_alphas(acts, grads), rtol=1e-9
    )
    assert np.all(np.isfinite(R.gradcampp(acts, grads * 1e-8)))


def test_zero_gradients_and_constant_maps_give_zeros_not_nan():
    acts = np.ones((3, 4, 4))
    zeros = np.zeros((3, 4, 4))
    for method in (R.gradcam, R.counterfactual, R.gradcampp):
        assert np.array_equal(method(acts, zeros), np.zeros((4, 4)))
    assert np.array_equal(R.gradcampp_alphas(acts, zeros), zeros)
    assert np.array_equal(R.normalize(np.full((2, 5, 5), 3.0)), np.zeros((2, 5, 5)))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)), elements=finite))
def test_normalize_is_min_max_per_map(m):
    n = R.normalize(m)
    assert np.all((n >= 0) & (n <= 1))
    for mi, ni in zip(m, n):
        if np.ptp(mi) > 0:
            assert ni.min() == 0 and ni.max() == pytest.approx(1.0)
            np.testing.assert_allclose(ni, (mi - mi.min()) / np.ptp(mi), rtol=1e-12, atol=1e-12)
        else:
            assert np.all(ni == 0)


def test_upsample_keeps_constants_and_identity():
    m = np.random.default_rng(1).normal(size=(2, 3, 4, 5))
    np.testing.assert_allclose(R.upsample(m, (4, 5)), m, atol=1e-15)
    np.testing.assert_allclose(R.upsample(np.full((3, 3), 2.5), (7, 11)), np.full((7, 11), 2.5), atol=1e-14)


def test_upsample_2x_by_hand():
    # half-pixel centres: output pixel 1 of a 2 -> 4 resize sits at source 0.25, between 1 and 3: 1.5
    np.testing.assert_allclose(R.upsample(np.array([[1.0, 3.0]]), (1, 4)), [[1.0, 1.5, 2.5, 3.0]], atol=1e-15)


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: R.gradcam(np.ones((3, 2, 2)), np.ones((3, 2, 3))), r"same shape \(\.\.\., K, H, W\)"),
        (lambda: R.gradcam_weights(np.ones((4, 4))), r"grads must have shape \(\.\.\., K, H, W\)"),
        (lambda: R.gradcam(np.ones((2, 2, 2)) * np.nan, np.ones((2, 2, 2))), "NaN or inf"),
        (lambda: R.weighted_combination(np.ones(2), np.ones((3, 2, 2))), r"weights must have shape \(3,\)"),
        (lambda: R.cam(np.ones((3, 2, 2)), np.ones(4)), r"weights must have shape \(3,\)"),
        (lambda: R.normalize(np.ones(3)), r"\(\.\.\., H, W\)"),
        (lambda: R.upsample(np.ones((2, 2)), (0, 3)), "size must be"),
        (lambda: R.gradcampp_alphas(np.ones((3, 2, 2)), np.full((3, 2, 2), np.inf)), "NaN or inf"),
    ],
)
def test_bad_input_raises_value_error_naming_the_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_reference_does_not_import_torch():
    tree = ast.parse(pathlib.Path(R.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"numpy"}
