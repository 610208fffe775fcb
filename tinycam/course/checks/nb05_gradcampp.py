"""Notebook 05, Grad-CAM++, the homework derivation: α from the derivatives, with Y = exp(S), in closed form, and w."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake

# The exercises of notebook 05 take NumPy arrays shaped (..., K, H, W). The first case of each is the handwritten
# example of notebook 01 (its gradient maps read as g = ∂S/∂A); the random ones mimic a ReLU layer: activations ≥ 0
# with exact zeros, gradients of both signs with exact zeros (dead units), a case with gradients of about 1e-3, the
# size our GAP network produces, where an added epsilon of 1e-6 is no longer negligible, and one with gradients of
# about 1e-6 (derivatives of about 1e-12), where an epsilon of any size shows: 1e-12 changes α by half, 1e-20 still
# by 5e-9.

_PP_SHAPES = [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (16, 8, 8), (2, 8, 4, 4)]


_PP_SCALES = [None, None, None, 1e-3, 1e-6]  # the gradients' size per shape (None: random, 0.2 to 2)
_PP_SMALL_DERIVATIVES = 1e-12  # the scale of the last general case's d2 and d3


def _pp_random_maps(rng, shape, scale):
    acts = np.maximum(rng.normal(size=shape), 0.0)
    grads = rng.normal(size=shape) * (scale or rng.uniform(0.2, 2.0))
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
    for shape, scale in zip(_PP_SHAPES, _PP_SCALES, strict=True):
        label = ("a random batch " if len(shape) == 4 else "random maps ") + "x".join(map(str, shape))
        cases.append((label + (f" with gradients ~{scale:.0e}" if scale else ""), _pp_random_maps(rng, shape, scale)))
    return cases


def _pp_general_cases(seed):
    """[(label, (acts, d2, d3))]: the example with Y = exp(S − S₀) (so d2 = g², d3 = g³ there), then random second
    and third derivatives of both signs (a smooth head), with exact zeros; the last ones of about 1e-12 (α does not
    change when d2 and d3 are scaled together, an added ε does)."""
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
        if shape == _PP_SHAPES[4]:
            d2, d3 = d2 * _PP_SMALL_DERIVATIVES, d3 * _PP_SMALL_DERIVATIVES
            label += f" with derivatives ~{_PP_SMALL_DERIVATIVES:.0e}"
        cases.append((label, (acts, d2, d3)))
    return cases


def _pp_general(acts, d2, d3, eps=0.0, sum_axes=(-2, -1), factor=2.0, sign=1.0, mean=False):
    """α = d2 / (factor·d2 + sign · Σ A · d3 + eps), 0 where the denominator is 0: the formula and its usual slips
    (`mean`: the mean of A over the axes instead of the sum)."""
    acts, d2, d3 = (np.asarray(x, dtype=np.float64) for x in (acts, d2, d3))
    reduce = np.mean if mean else np.sum
    total = acts if sum_axes is None else reduce(acts, axis=sum_axes, keepdims=True)
    denominator = factor * d2 + sign * total * d3 + eps
    return np.divide(d2, denominator, out=np.zeros_like(d2), where=denominator != 0)


def _pp_fit_eps(got, acts, d2, d3):
    """The ε > 0 that `got` = d2 / (2·d2 + Σ A · d3 + ε) implies, or None when the answer implies none: the median of
    d2 / got − (2·d2 + Σ A · d3) over the quarter of the pixels (where neither is 0) whose denominator is smallest,
    those where an ε shows most and rounding least."""
    try:
        got, acts, d2, d3 = (np.asarray(x, dtype=np.float64) for x in (got, acts, d2, d3))
        denominator = 2 * d2 + acts.sum(axis=(-2, -1), keepdims=True) * d3
        usable = (got != 0) & (d2 != 0) & np.isfinite(got)
        if got.shape != d2.shape or not usable.any():
            return None
        size = np.abs(denominator[usable])
        sensitive = size <= np.quantile(size, 0.25)
        implied = d2[usable][sensitive] / got[usable][sensitive] - denominator[usable][sensitive]
        eps = float(np.median(implied))
    except (TypeError, ValueError):
        return None
    # an ε lost in the rounding of the denominators (a right answer's noise) is no ε
    return eps if np.isfinite(eps) and eps > 1e-14 * float(np.median(size[sensitive])) else None


_EPS_EXAMPLES = (1e-6, 1e-8, 1e-12, 1e-16, 1e-20)  # the sizes of ε the tests plant


_EPS_HINT = ("no ε in the denominator, however small: it changes α wherever the derivatives are as small as ε, and "
             "where the denominator is exactly 0 the answer is simply α = 0")
_OWN_PIXEL_HINT = ("the sum in the denominator runs over every pixel (a, b) of the same map, not just the pixel's own "
                   "activation")
_ALL_MAPS_HINT = "the sum runs over the pixels of each feature map on its own, not over all the maps together"
_SIGN_HINT = ("check the sign of the activation-sum term: solving the equation for α leaves both terms of the "
              "denominator with a plus")
_MEAN_HINT = "the activations are summed over the map's pixels, not averaged: there is no 1/Z in α"

GRADCAMPP_ALPHAS_GENERAL = Exercise(
    "gradcampp_alphas_general", "05_gradcampp", points=2,  # answer(acts, d2, d3) -> α, all (..., K, H, W)
    cases=_pp_general_cases, expected=reference.gradcampp_alphas_from_derivatives,
    hint="α is the second derivative over twice itself plus the third derivative times the sum of the map's "
         "activations, that sum taken over each map's own pixels; where the denominator is 0, α is 0 (no NaN)",
    mistakes=(
        Mistake("solving for α the equation the second derivatives satisfy leaves a 2 in front of d2 in the "
                "denominator", lambda a, d2, d3: _pp_general(a, d2, d3, factor=1.0)),
        Mistake(_OWN_PIXEL_HINT, lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=None)),
        Mistake(_ALL_MAPS_HINT, lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=(-3, -2, -1))),
        Mistake(_SIGN_HINT, lambda a, d2, d3: _pp_general(a, d2, d3, sign=-1.0)),
        Mistake(_MEAN_HINT, lambda a, d2, d3: _pp_general(a, d2, d3, mean=True)),
        Mistake(_EPS_HINT, lambda a, d2, d3, eps: _pp_general(a, d2, d3, eps=eps), fit=_pp_fit_eps,
                examples=_EPS_EXAMPLES),
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
    hint="differentiate exp(S) along one activation twice, then three times, using that S is linear in the "
         "activations (its own second derivative is 0); return the pair (second, third)",
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


def _pp_closed(acts, grads, **slip):
    g = np.asarray(grads, dtype=np.float64)
    return _pp_general(acts, g**2, g**3, **slip)


def _pp_closed_fit_eps(got, acts, grads):
    g = np.asarray(grads, dtype=np.float64)
    return _pp_fit_eps(got, acts, g**2, g**3)


def _pp_cancelled(acts, grads):
    """1 / (2 + ΣA·g): the closed form after cancelling g², wrong (1/2 instead of 0) where g = 0."""
    total = np.asarray(acts, dtype=np.float64).sum(axis=(-2, -1), keepdims=True)
    denominator = 2.0 + total * np.asarray(grads, dtype=np.float64)
    return np.divide(1.0, denominator, out=np.zeros_like(denominator), where=denominator != 0)


GRADCAMPP_ALPHA_CLOSED_FORM = Exercise(
    "gradcampp_alpha_closed_form", "05_gradcampp", points=3,  # answer(acts, grads) -> α, (..., K, H, W)
    cases=_pp_maps_cases, expected=reference.gradcampp_alphas,
    hint="put the derivatives of exp(S) into the general α and simplify: the factor exp(S) cancels, powers of the "
         "gradient remain, and the sum of the activations is over each map's own pixels; α = 0 where the "
         "denominator is 0 (no NaN)",
    mistakes=(
        Mistake(_EPS_HINT, lambda a, g, eps: _pp_closed(a, g, eps=eps), fit=_pp_closed_fit_eps,
                examples=_EPS_EXAMPLES),
        Mistake("cancelling g² is fine only where g ≠ 0: where the gradient is exactly 0 (a dead unit), α must be 0",
                _pp_cancelled),
        Mistake("the denominator has twice the squared gradient, not once",
                lambda a, g: _pp_closed(a, g, factor=1.0)),
        Mistake(_OWN_PIXEL_HINT, lambda a, g: _pp_closed(a, g, sum_axes=None)),
        Mistake(_ALL_MAPS_HINT, lambda a, g: _pp_closed(a, g, sum_axes=(-3, -2, -1))),
        Mistake(_SIGN_HINT, lambda a, g: _pp_closed(a, g, sign=-1.0)),
        Mistake(_MEAN_HINT, lambda a, g: _pp_closed(a, g, mean=True)),
    ),
)


def _pp_weights_cases(seed):
    """[(label, (alphas, grads))]: the closed-form α of each case of `_pp_maps_cases` with its gradients."""
    return [(label, (reference.gradcampp_alphas(acts, grads), grads)) for label, (acts, grads) in _pp_maps_cases(seed)]


def _pp_weights(alphas, grads, relu_product=False, normalize=None):
    """w = Σ_ij α_ij ReLU(g_ij) and its slips: ReLU(α·g) in the sum, α normalized to sum to 1 over each
    map first (`normalize`: "map" over all its pixels, as the authors' code; "positive" over those with g > 0)."""
    alphas, grads = np.asarray(alphas, dtype=np.float64), np.asarray(grads, dtype=np.float64)
    if normalize is not None:
        counted = alphas if normalize == "map" else np.where(grads > 0, alphas, 0.0)
        total = counted.sum(axis=(-2, -1), keepdims=True)
        alphas = np.divide(alphas, total, out=np.zeros_like(alphas), where=total != 0)
    terms = np.maximum(alphas * grads, 0.0) if relu_product else alphas * np.maximum(grads, 0.0)
    # (no "ReLU on the weights" slip: with activations ≥ 0, α > 0 wherever g > 0, so w ≥ 0 and the ReLU changes nothing)
    return terms.sum(axis=(-2, -1))


GRADCAMPP_WEIGHTS_FROM_ALPHAS = Exercise(
    "gradcampp_weights_from_alphas", "05_gradcampp", points=2,  # answer(alphas, grads) -> w, (..., K, H, W) -> (..., K)
    cases=_pp_weights_cases, expected=_pp_weights,
    hint="each map's weight adds up, over its pixels, α times the positive part of the gradient: one weight per map",
    mistakes=(
        Mistake("only the positive gradients count: take the positive part of each gradient before weighting it by α",
                lambda al, g: (np.asarray(al) * np.asarray(g)).sum(axis=(-2, -1))),
        Mistake("α already does the weighting: add the products up over the pixels, do not average them (no 1/Z)",
                lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).mean(axis=(-2, -1))),
        Mistake("add up over the pixels of each map (its two spatial axes), keeping one weight per feature map",
                lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).sum(axis=-3)),
        Mistake("use the per-pixel weights α: w_k is the α-weighted sum of the positive gradients, not Grad-CAM's "
                "mean of the gradients", lambda al, g: reference.gradcam_weights(g)),
        Mistake("take the positive part of the gradient alone, then multiply by α: where α is negative, the positive "
                "part of the product keeps a negative gradient", lambda al, g: _pp_weights(al, g, relu_product=True)),
        Mistake("use α as the closed form gives it: normalizing α to sum to 1 over each map (as the authors' code "
                "does) is a variant that rescales every weight", lambda al, g: _pp_weights(al, g, normalize="map")),
        Mistake("use α as the closed form gives it: normalizing α over the positive-gradient pixels (as some ports "
                "do) is a variant that rescales every weight", lambda al, g: _pp_weights(al, g, normalize="positive")),
    ),
)


EXERCISES = (GRADCAMPP_ALPHAS_GENERAL, EXP_SCORE_DERIVATIVES, GRADCAMPP_ALPHA_CLOSED_FORM,
             GRADCAMPP_WEIGHTS_FROM_ALPHAS)
