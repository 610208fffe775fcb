"""Notebook 05, Grad-CAM++, the homework derivation: α from the derivatives, with Y = exp(S), in closed form, and w."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake

# The exercises of notebook 05 take NumPy arrays shaped (..., K, H, W). The first case of each is the handwritten
# example of notebook 01 (its gradient maps read as g = ∂S/∂A); the random ones mimic a ReLU layer: activations ≥ 0
# with exact zeros, gradients of both signs with exact zeros (dead units), and a case with gradients of about 1e-3,
# the size our GAP network produces, where an added epsilon of 1e-6 is no longer negligible.

_PP_SHAPES = [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (16, 8, 8), (2, 8, 4, 4)]


def _pp_random_maps(rng, shape, small):
    acts = np.maximum(rng.normal(size=shape), 0.0)
    grads = rng.normal(size=shape) * (1e-3 if small else rng.uniform(0.2, 2.0))
    grads[rng.random(shape) < 0.2] = 0.0
    # keep away from the pole ΣA·g = −2, where any formula is ill-conditioned and rounding would decide
    near_pole = np.abs(2.0 + acts.sum(axis=(-2, -1), keepdims=True) * grads) < 1e-2
    grads[near_pole] = 0.0
    return acts, grads


def _pp_maps_cases(seed):
    """[(label, (acts, grads))]: the handwritten example, then random maps as described above."""
    rng = np.random.default_rng(seed)
    ex = lecture.worked_example()
    cases = [("the handwritten example of notebook 01", (ex["acts"], ex["grads"]))]
    for number, shape in enumerate(_PP_SHAPES):
        small = number == 3
        label = ("a random batch " if len(shape) == 4 else "random maps ") + "x".join(map(str, shape))
        cases.append((label + (" with gradients ~1e-3" if small else ""), _pp_random_maps(rng, shape, small)))
    return cases


def _pp_general_cases(seed):
    """[(label, (acts, d2, d3))]: the example with Y = exp(S − S₀) (so d2 = g², d3 = g³ there), then random second
    and third derivatives of both signs (a smooth head), with exact zeros."""
    rng = np.random.default_rng(seed + 1)
    ex = lecture.worked_example()
    cases = [("the handwritten example with Y = exp(S - S0): d2 = g^2, d3 = g^3",
              (ex["acts"], ex["grads"] ** 2, ex["grads"] ** 3))]
    for shape in _PP_SHAPES[:3] + _PP_SHAPES[4:]:
        acts = np.maximum(rng.normal(size=shape), 0.0)
        d2, d3 = rng.normal(size=shape), rng.normal(size=shape)
        d2[rng.random(shape) < 0.2] = 0.0  # where the denominator is then 0 too, α is 0
        d3[d2 == 0.0] = 0.0
        total = acts.sum(axis=(-2, -1), keepdims=True)
        d3[np.abs(2 * d2 + total * d3) < 1e-2 * (np.abs(d2) + 1)] = 0.0  # no near-zero denominators
        label = ("a random batch " if len(shape) == 4 else "random maps ") + "x".join(map(str, shape))
        cases.append((label, (acts, d2, d3)))
    return cases


def _pp_general(acts, d2, d3, eps=0.0, sum_axes=(-2, -1), factor=2.0):
    """α = d2 / (factor·d2 + Σ A · d3 + eps), 0 where the denominator is 0: the formula and its usual slips."""
    acts, d2, d3 = (np.asarray(x, dtype=np.float64) for x in (acts, d2, d3))
    total = acts if sum_axes is None else acts.sum(axis=sum_axes, keepdims=True)
    denominator = factor * d2 + total * d3 + eps
    return np.divide(d2, denominator, out=np.zeros_like(d2), where=denominator != 0)


GRADCAMPP_ALPHAS_GENERAL = Exercise(
    "gradcampp_alphas_general", "05_gradcampp", points=2,  # answer(acts, d2, d3) -> α, all (..., K, H, W)
    cases=_pp_general_cases, expected=reference.gradcampp_alphas_from_derivatives,
    hint="α = d2 / (2·d2 + Σ_ab A_ab · d3), the sum over each map's own pixels (axis=(-2, -1), keepdims=True); "
         "where the denominator is 0, α is 0 (no NaN)",
    mistakes=(
        Mistake("solving ∂²Y = 2α ∂²Y + ΣA α ∂³Y for α gives a 2 in front of d2 in the denominator",
                lambda a, d2, d3: _pp_general(a, d2, d3, factor=1.0)),
        Mistake("the sum runs over every pixel (a, b) of the same map: Σ_ab A^k_ab, not the pixel's own A^k_ij",
                lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=None)),
        Mistake("sum over the two spatial axes of each map (axis=(-2, -1)), not over all the maps together",
                lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=(-3, -2, -1))),
        Mistake("no epsilon: put α = 0 exactly where the denominator is 0 and divide exactly elsewhere",
                lambda a, d2, d3: _pp_general(a, d2, d3, eps=1e-6)),
    ),
)


def _pp_exp_cases(seed):
    """[(label, (grads, score))]: the example's gradients with S = 2, then random gradients and scores in [−3, 3]."""
    rng = np.random.default_rng(seed + 2)
    cases = [("the handwritten gradient maps with S = 2", (lecture.worked_example()["grads"], 2.0))]
    for label, (_, grads) in _pp_maps_cases(seed)[1:]:
        score = float(rng.uniform(-3.0, 3.0))
        cases.append((f"{label}, S = {score:.3f}", (grads, score)))
    return cases


def _pp_exp(grads, score, powers=(2, 3), factor=None):
    g = np.asarray(grads, dtype=np.float64)
    scale = np.exp(score) if factor is None else factor(score)
    return np.stack([scale * g ** powers[0], scale * g ** powers[1]])


EXP_SCORE_DERIVATIVES = Exercise(
    "exp_score_derivatives", "05_gradcampp", points=2,  # answer(grads, score) -> (d2, d3), each like grads
    cases=_pp_exp_cases, expected=_pp_exp,
    hint="with Y = exp(S) and ∂²S/∂A² = 0: ∂²Y/∂A² = exp(S)·g², ∂³Y/∂A³ = exp(S)·g³; return (d2, d3)",
    mistakes=(
        Mistake("each derivative of exp(S) keeps the factor exp(S): d2 = exp(S)·g², d3 = exp(S)·g³",
                lambda g, s: _pp_exp(g, s, factor=lambda s: 1.0)),
        Mistake("the factor is exp(S), not S: the derivative of exp is exp",
                lambda g, s: _pp_exp(g, s, factor=lambda s: s)),
        Mistake("count the derivatives: the n-th derivative of exp(S) along A_ij is exp(S)·gⁿ, so g² and g³",
                lambda g, s: _pp_exp(g, s, powers=(1, 2))),
        Mistake("return them in the order (second derivative, third derivative)",
                lambda g, s: _pp_exp(g, s, powers=(3, 2))),
    ),
)


def _pp_closed(acts, grads, eps=0.0, factor=2.0, sum_axes=(-2, -1)):
    g = np.asarray(grads, dtype=np.float64)
    return _pp_general(acts, g**2, g**3, eps=eps, factor=factor, sum_axes=sum_axes)


def _pp_cancelled(acts, grads):
    """1 / (2 + ΣA·g): the closed form after cancelling g², wrong (1/2 instead of 0) where g = 0."""
    total = np.asarray(acts, dtype=np.float64).sum(axis=(-2, -1), keepdims=True)
    denominator = 2.0 + total * np.asarray(grads, dtype=np.float64)
    return np.divide(1.0, denominator, out=np.zeros_like(denominator), where=denominator != 0)


GRADCAMPP_ALPHA_CLOSED_FORM = Exercise(
    "gradcampp_alpha_closed_form", "05_gradcampp", points=3,  # answer(acts, grads) -> α, (..., K, H, W)
    cases=_pp_maps_cases, expected=reference.gradcampp_alphas,
    hint="α = g² / (2g² + Σ_ab A_ab · g³) with Σ_ab over each map's own pixels (axis=(-2, -1), keepdims=True), "
         "and α = 0 where the denominator is 0 (no NaN)",
    mistakes=(
        Mistake("no epsilon in the denominator: with gradients of ~1e-3, g² is ~1e-6 and an added 1e-6 changes α a lot",
                lambda a, g: _pp_closed(a, g, eps=1e-6)),
        Mistake("cancelling g² is fine only where g ≠ 0: where the gradient is exactly 0 (a dead unit), α must be 0",
                _pp_cancelled),
        Mistake("the denominator has 2·g², not g²",
                lambda a, g: _pp_closed(a, g, factor=1.0)),
        Mistake("the sum runs over every pixel (a, b) of the same map: Σ_ab A^k_ab, not the pixel's own A^k_ij",
                lambda a, g: _pp_closed(a, g, sum_axes=None)),
        Mistake("sum over the two spatial axes of each map (axis=(-2, -1)), not over all the maps together",
                lambda a, g: _pp_closed(a, g, sum_axes=(-3, -2, -1))),
    ),
)


def _pp_weights_cases(seed):
    """[(label, (alphas, grads))]: the closed-form α of each case of `_pp_maps_cases` with its gradients."""
    return [(label, (reference.gradcampp_alphas(acts, grads), grads)) for label, (acts, grads) in _pp_maps_cases(seed)]


GRADCAMPP_WEIGHTS_FROM_ALPHAS = Exercise(
    "gradcampp_weights_from_alphas", "05_gradcampp", points=2,  # answer(alphas, grads) -> w, (..., K, H, W) -> (..., K)
    cases=_pp_weights_cases,
    expected=lambda alphas, grads: (np.asarray(alphas) * np.maximum(grads, 0.0)).sum(axis=(-2, -1)),
    hint="w_k^c = Σ_ij α^kc_ij · ReLU(g^k_ij): multiply, then sum over axis=(-2, -1)",
    mistakes=(
        Mistake("only the positive gradients count: ReLU(g) = max(g, 0) before multiplying by α",
                lambda al, g: (np.asarray(al) * np.asarray(g)).sum(axis=(-2, -1))),
        Mistake("α already does the weighting: sum the products over the pixels, do not average them",
                lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).mean(axis=(-2, -1))),
        Mistake("sum over the two spatial axes (the last two), keeping the feature-map axis k",
                lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).sum(axis=-3)),
        Mistake("use the per-pixel weights α: w_k is Σ_ij α_ij ReLU(g_ij), not Grad-CAM's mean of the gradients",
                lambda al, g: reference.gradcam_weights(g)),
    ),
)


EXERCISES = (GRADCAMPP_ALPHAS_GENERAL, EXP_SCORE_DERIVATIVES, GRADCAMPP_ALPHA_CLOSED_FORM,
             GRADCAMPP_WEIGHTS_FROM_ALPHAS)
