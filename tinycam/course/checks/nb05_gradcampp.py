"""Notebook 05, Grad-CAM++, the homework derivation: α from the derivatives, with Y = exp(S), in closed form, and w."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.derivation import Step, exact, is_symbolic
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
    cases = [("the handwritten example, its derivatives those of Y = exp(S - S0)",
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
    """The ε > 0 that `got` = d2 / (2·d2 + Σ A · d3 + ε) implies, or None when the answer implies none."""
    try:
        acts, d2, d3 = (np.asarray(x, dtype=np.float64) for x in (acts, d2, d3))
        return _fit_eps(got, d2, 2 * d2 + acts.sum(axis=(-2, -1), keepdims=True) * d3)
    except (TypeError, ValueError):
        return None


def _fit_eps(got, numerator, denominator):
    """The ε > 0 that `got` = numerator / (denominator + ε) implies, or None: the median of numerator / got −
    denominator over the quarter of the pixels (where neither is 0) whose denominator is smallest, those where an ε
    shows most and rounding least."""
    try:
        got, numerator, denominator = (np.asarray(x, dtype=np.float64) for x in (got, numerator, denominator))
        denominator = np.broadcast_to(denominator, numerator.shape)
        usable = (got != 0) & (numerator != 0) & np.isfinite(got)
        if got.shape != numerator.shape or not usable.any():
            return None
        size = np.abs(denominator[usable])
        sensitive = size <= np.quantile(size, 0.25)
        implied = numerator[usable][sensitive] / got[usable][sensitive] - denominator[usable][sensitive]
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
    hint="compute the α of step 3 at every pixel of every map, the sum of the activations taken over each map's own "
         "pixels; where the denominator is 0, α is 0 (no NaN)",
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
        Mistake("each derivative of exp(S) keeps the factor exp(S), the score being a number you are given",
                lambda g, s: _pp_exp(g, s, factor=lambda s: 1.0)),
        Mistake("the factor is exp(S), not S: the derivative of exp is exp",
                lambda g, s: _pp_exp(g, s, factor=lambda s: s)),
        Mistake("count the derivatives: each one along A_ij brings one more factor g (step 4, with ∂²S = ∂³S = 0)",
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




# ---------------------------------------------------------------------------------------------------------------
# The derivation, step by step (section 2 of the notebook): each step is a `derivation.Step`, a small function of the
# step's symbols written with arithmetic only (and np.maximum for a ReLU), so that the same function runs on NumPy
# arrays of numbers and on SymPy symbols (object arrays of them for the maps). The check proves the answer equal to the
# step's expression on symbols (SymPy, imported when a check runs) and judges it on numeric cases, as every exercise;
# the grader judges the numeric cases only. `expected` and the mistakes are written with arithmetic too.

_SYMBOLIC_HINT = ("write the step with arithmetic only (+, −, ×, /, powers, sums over axes, and np.maximum(x, 0) for "
                  "a ReLU): the check runs your function on SymPy symbols to prove it equal to the step")


def _step_cases(seed, offset, first, shapes, draw, last=""):
    """[(label, args)]: `first` (the handwritten example's), then `draw(rng, shape)` for each shape (`last`: what
    the label of the last one adds)."""
    rng = np.random.default_rng(seed + offset)
    cases = [first]
    for shape in shapes:
        label = ("a random batch " if len(shape) == 4 else "random maps ") + "x".join(map(str, shape))
        cases.append((label + (last if shape == shapes[-1] else ""), draw(rng, shape)))
    return cases


_STEP_SHAPES = [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (16, 8, 8)]


def _example():
    """The handwritten example: acts, grads (read as g = ∂S/∂A), ΣA per map (broadcast to every pixel), and α."""
    ex = lecture.worked_example()
    acts, grads = ex["acts"], ex["grads"]
    total = np.broadcast_to(acts.sum(axis=(-2, -1), keepdims=True), acts.shape).copy()
    return acts, grads, total, reference.gradcampp_alphas(acts, grads)


def _map_symbols(signs):
    """Object arrays (K, H, W) of SymPy symbols: activations and α positive, gradients of the given signs."""
    import sympy

    signs = np.asarray(signs)
    acts, alphas, grads = (np.empty(signs.shape, dtype=object) for _ in range(3))
    for index in np.ndindex(signs.shape):
        suffix = "".join(map(str, index))
        acts[index] = sympy.Symbol(f"A{suffix}", positive=True)
        alphas[index] = sympy.Symbol(f"alpha{suffix}", positive=True)
        sign = {"positive": True} if signs[index] > 0 else {"negative": True}
        grads[index] = sympy.Symbol(f"g{suffix}", **sign)
    return acts, alphas, grads


# Step 1: the score Grad-CAM++ assumes, Y = Σ_k w_k Σ_ij A^k_ij with w_k = Σ_ab α_ab ReLU(∂Y/∂A^k_ab).

def _score_model(acts, alphas, grads, relu=True, per_pixel=False, mean=False):
    """Y of formulas (1) and (2), for arrays (..., K, H, W) of numbers or symbols, and its slips."""
    acts, alphas, grads = (np.asarray(x) for x in (acts, alphas, grads))
    if acts.dtype != object:
        acts, alphas, grads = (x.astype(np.float64) for x in (acts, alphas, grads))
    terms = alphas * (np.maximum(grads, 0) if relu else grads)
    if per_pixel:  # one sum over the pixels of α·ReLU(g)·A
        return (terms * acts).sum(axis=(-3, -2, -1))
    weights = terms.sum(axis=(-2, -1))
    pixels = acts.shape[-1] * acts.shape[-2]
    totals = acts.sum(axis=(-2, -1)) / (pixels if mean else 1)
    return (weights * totals).sum(axis=-1)


def _score_model_cases(seed):
    acts, grads, _, alphas = _example()

    def draw(rng, shape):
        acts = np.maximum(rng.normal(size=shape), 0.0)
        grads = rng.normal(size=shape)
        grads[..., 0, 0] = -np.abs(grads[..., 0, 0]) - 1.0  # every map has a negative gradient
        grads[..., 1, :] -= 2.0  # and some maps more negative than positive: their ReLU(Σ) and Σ ReLU differ
        return acts, rng.uniform(0.05, 0.5, size=shape), grads

    return _step_cases(seed, 10, ("the handwritten example with its closed-form α", (acts, alphas, grads)),
                       _STEP_SHAPES, draw)


GRADCAMPP_SCORE_MODEL = Step(
    "gradcampp_score_model", "05_gradcampp", points=1,  # answer(acts, alphas, grads) -> Y, (..., K, H, W) -> (...)
    cases=_score_model_cases, expected=_score_model,
    symbols=lambda: [("symbols (2 maps of 2x2 pixels, gradients of both signs)",
                      _map_symbols([[[1, -1], [1, 1]], [[-1, 1], [1, -1]]]))],
    symbols_hint=_SYMBOLIC_HINT,
    hint="Y adds up, over the maps, the map's weight times the sum of its activations, and each weight adds up "
         "the pixels' α times the positive part of their gradient",
    mistakes=(
        # (a ReLU on the channel weight instead cannot run on symbols of both signs, and on the handwritten example,
        # whose weights are all positive, it gives this same wrong answer: it gets this hint, which fits it too)
        Mistake("(2) counts the positive gradients only: the ReLU acts on each pixel's gradient, before it is "
                "weighted by α and summed", lambda a, al, g: _score_model(a, al, g, relu=False)),
        Mistake("two separate sums: w_k sums over the pixels (a, b), and multiplies the sum of the map's "
                "activations over the pixels (i, j); not one sum over the pixels of products",
                lambda a, al, g: _score_model(a, al, g, per_pixel=True)),
        Mistake("in (1) the activations are summed, not averaged: CAM's 1/Z is absorbed into w",
                lambda a, al, g: _score_model(a, al, g, mean=True)),
    ),
)


# Step 2: differentiate (1) with (2) substituted twice along one activation A^k_ij: the right-hand side.

def _twice(alpha, total, d2, d3, factor=2, alpha_on_d3=True, total_on_d3=True, order=3):
    """2·α·∂²Y + ΣA·α·∂³Y and its slips (`order`: the derivative the last term carries)."""
    last = d3 if order == 3 else d2
    return factor * alpha * d2 + (total if total_on_d3 else 1) * (alpha if alpha_on_d3 else 1) * last


def _alpha_total_derivatives_cases(seed, offset, make):
    """Cases (alpha, total, d2, d3) or (total, d2, d3): the example with Y = exp(S − S₀), then random ones."""
    _, grads, total, alphas = _example()

    def draw(rng, shape):
        total = np.broadcast_to(rng.uniform(0.0, 20.0, size=shape[:-2] + (1, 1)), shape).copy()
        d2, d3 = rng.normal(size=shape), rng.normal(size=shape)
        d3[np.abs(2 * d2 + total * d3) < 1e-2 * (np.abs(d2) + 1)] += 1.0  # no near-zero denominators
        if shape == _STEP_SHAPES[-1]:  # tiny derivatives, where an ε of any size shows
            d2, d3 = d2 * _PP_SMALL_DERIVATIVES, d3 * _PP_SMALL_DERIVATIVES
        return make(rng.uniform(0.05, 0.5, size=shape), total, d2, d3)

    first = ("the handwritten example, its derivatives those of Y = exp(S - S0)",
             make(alphas, total, grads**2, grads**3))
    return _step_cases(seed, offset, first, _STEP_SHAPES, draw, f" with derivatives ~{_PP_SMALL_DERIVATIVES:.0e}")


def _scalar_symbols(*names, **assumptions):
    """[("symbols", args)]: one symbolic case, a SymPy symbol per name (real, unless `assumptions` say otherwise)."""
    import sympy

    return [("symbols", tuple(sympy.Symbol(name, **assumptions.get(name, {"real": True})) for name in names))]


TWICE_DIFFERENTIATED = Step(
    "twice_differentiated", "05_gradcampp", points=1,  # answer(alpha, total, d2, d3) -> the right-hand side
    cases=lambda seed: _alpha_total_derivatives_cases(seed, 11, lambda al, t, d2, d3: (al, t, d2, d3)),
    expected=_twice, symbols=lambda: _scalar_symbols("alpha", "total", "d2", "d3"), symbols_hint=_SYMBOLIC_HINT,
    hint="differentiate the equation of step 1 along A^k_ij twice, keeping the pixel's own α and treating the α's "
         "as constants; the product rule acts on the bracket times the activations",
    mistakes=(
        Mistake("the term α·∂²Y comes twice: once from differentiating the first sum again, once from the product "
                "rule on the second term", lambda al, t, d2, d3: _twice(al, t, d2, d3, factor=1)),
        Mistake("the product rule leaves the sum of the map's activations over (a, b) as the factor of the third "
                "derivative", lambda al, t, d2, d3: _twice(al, t, d2, d3, total_on_d3=False)),
        Mistake("the third-derivative term comes from the bracket, so it keeps the pixel's own α",
                lambda al, t, d2, d3: _twice(al, t, d2, d3, alpha_on_d3=False)),
        Mistake("differentiating ∂²Y once more gives the third derivative: the last term carries ∂³Y",
                lambda al, t, d2, d3: _twice(al, t, d2, d3, order=2)),
    ),
)


# Step 3: solve the equation of step 2 for α.

def _solved(total, d2, d3, factor=2, sign=1, with_total=True, eps=0):
    return d2 / (factor * d2 + sign * (total if with_total else 1) * d3 + eps)


def _solved_fit_eps(got, total, d2, d3):
    """The ε that got = d2 / (2·d2 + ΣA·d3 + ε) implies: a SymPy number for symbols, a float for arrays; else None."""
    if not is_symbolic(total):
        return _fit_eps(got, d2, 2 * np.asarray(d2, dtype=np.float64) + np.asarray(total, dtype=np.float64) * d3)
    import sympy

    try:
        eps = sympy.simplify(exact(d2) / exact(got) - (2 * d2 + total * d3))
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, sympy.SympifyError):
        return None
    return eps if eps.is_number and eps != 0 else None


ALPHA_SOLVED = Step(
    "alpha_solved", "05_gradcampp", points=1,  # answer(total, d2, d3) -> α
    cases=lambda seed: _alpha_total_derivatives_cases(seed, 12, lambda al, t, d2, d3: (t, d2, d3)),
    expected=_solved, symbols=lambda: _scalar_symbols("total", "d2", "d3"), symbols_hint=_SYMBOLIC_HINT,
    hint="α appears in both terms of the right-hand side of step 2: factor it out and divide",
    mistakes=(
        Mistake(_EPS_HINT, lambda t, d2, d3, eps: _solved(t, d2, d3, eps=eps), fit=_solved_fit_eps,
                examples=_EPS_EXAMPLES),
        Mistake("both terms on the right carry α, and the first is 2·α·∂²Y: the factor 2 stays in the denominator",
                lambda t, d2, d3: _solved(t, d2, d3, factor=1)),
        Mistake("solving moves nothing across the equals sign: both terms of the denominator keep their plus",
                lambda t, d2, d3: _solved(t, d2, d3, sign=-1)),
        Mistake("the third derivative keeps its factor, the sum of the map's activations",
                lambda t, d2, d3: _solved(t, d2, d3, with_total=False)),
        Mistake("α is the left-hand side over the factor that multiplies α, not that factor over the left-hand side",
                lambda t, d2, d3: (2 * d2 + t * d3) / d2),
    ),
)


# Step 4: with Y = exp(S), the derivatives of Y along A^k_ij through those of S (g, ∂²S, ∂³S) and e^S.

def _chain(exp_s, g, s2, s3, with_exp=True, cube=True, cross=3, curvature=True):
    """(∂Y, ∂²Y, ∂³Y) of Y = e^S: e^S·g, e^S·(g² + ∂²S), e^S·(g³ + 3g·∂²S + ∂³S), and their slips."""
    e = exp_s if with_exp else 1
    s2, s3 = (s2, s3) if curvature else (0 * s2, 0 * s3)
    return e * g, e * (g**2 + s2), e * ((g**3 if cube else g**2) + cross * g * s2 + s3)


def _chain_cases(seed):
    _, grads, _, _ = _example()

    def draw(rng, shape):
        return (np.exp(rng.uniform(-3.0, 3.0, size=shape[:-3] + (1, 1, 1))) * np.ones(shape), rng.normal(size=shape),
                rng.normal(size=shape), rng.normal(size=shape))

    ones = np.ones_like(grads)
    first = ("the handwritten gradient maps with S = 2 and S piecewise linear (d2 S = d3 S = 0)",
             (np.exp(2.0) * ones, grads, 0 * ones, 0 * ones))
    return _step_cases(seed, 13, first, _STEP_SHAPES, draw)


EXP_CHAIN_RULE = Step(
    "exp_chain_rule", "05_gradcampp", points=1,  # answer(exp_s, g, s2, s3) -> (d1, d2, d3)
    cases=_chain_cases, expected=_chain,
    symbols=lambda: _scalar_symbols("exp_s", "g", "s2", "s3", exp_s={"positive": True}), symbols_hint=_SYMBOLIC_HINT,
    hint="differentiate Y = exp(S) along A^k_ij with the chain rule, then the product rule: each derivative of e^S "
         "is e^S times g, and g itself has the derivative ∂²S; return the three derivatives in order",
    mistakes=(
        Mistake("each derivative of exp(S) keeps the factor exp(S): it never differentiates away",
                lambda e, g, s2, s3: _chain(e, g, s2, s3, with_exp=False)),
        Mistake("keep ∂²S and ∂³S here: S being piecewise linear is assumed in the next step, not this one",
                lambda e, g, s2, s3: _chain(e, g, s2, s3, curvature=False)),
        Mistake("the third derivative of exp(S) has three factors g, not two: cube the gradient",
                lambda e, g, s2, s3: _chain(e, g, s2, s3, cube=False)),
        Mistake("the derivative of g² is 2g·∂²S, and the factor e^S brings one more g·∂²S: three in all",
                lambda e, g, s2, s3: _chain(e, g, s2, s3, cross=1)),
        Mistake("differentiate both factors of e^S·(g² + ∂²S): e^S's own derivative multiplies the ∂²S too",
                lambda e, g, s2, s3: _chain(e, g, s2, s3, cross=2)),
    ),
)


# Step 5: the closed form, (4) put into (3) with S piecewise linear.

def _closed_pixel(g, total, factor=2, eps=0, cube=True, sign=1):
    return g**2 / (factor * g**2 + sign * total * (g**3 if cube else g**2) + eps)


def _closed_pixel_fit_eps(got, g, total):
    return _solved_fit_eps(got, total, g**2, g**3)


def _closed_pixel_cases(seed):
    acts, grads, total, _ = _example()
    keep = grads != 0  # the example has no zero gradient; kept general: the cancelled form needs g ≠ 0

    def draw(rng, shape):
        g = rng.normal(size=shape)
        g[np.abs(g) < 1e-2] = 0.5
        total = np.broadcast_to(rng.uniform(0.0, 20.0, size=shape[:-2] + (1, 1)), shape).copy()
        g[np.abs(2 + total * g) < 1e-2] = 0.5  # away from the pole
        if shape == _STEP_SHAPES[-1]:
            g = g * 1e-6  # tiny gradients, where an ε of any size shows
        return g, total

    first = ("the handwritten example: g and the sum of its map's activations", (np.where(keep, grads, 1.0), total))
    return _step_cases(seed, 14, first, _STEP_SHAPES, draw, " with gradients ~1e-06")


ALPHA_EXP_CLOSED_FORM = Step(
    "alpha_exp_closed_form", "05_gradcampp", points=1,  # answer(g, total) -> α, at a pixel with g ≠ 0
    cases=_closed_pixel_cases, expected=_closed_pixel,
    symbols=lambda: _scalar_symbols("g", "total", g={"real": True, "nonzero": True}), symbols_hint=_SYMBOLIC_HINT,
    hint="put the derivatives of step 4, with ∂²S = ∂³S = 0, into the α of step 3 and simplify: the factor e^S "
         "cancels and powers of g remain",
    mistakes=(
        Mistake(_EPS_HINT, lambda g, t, eps: _closed_pixel(g, t, eps=eps), fit=_closed_pixel_fit_eps,
                examples=_EPS_EXAMPLES),
        Mistake("the denominator has twice the squared gradient (the factor 2 of step 3)",
                lambda g, t: _closed_pixel(g, t, factor=1)),
        Mistake("the third derivative is e^S·g³: the activation-sum term carries the cube of the gradient",
                lambda g, t: _closed_pixel(g, t, cube=False)),
        Mistake(_SIGN_HINT, lambda g, t: _closed_pixel(g, t, sign=-1)),
    ),
)


DERIVATION = (GRADCAMPP_SCORE_MODEL, TWICE_DIFFERENTIATED, ALPHA_SOLVED, EXP_CHAIN_RULE, ALPHA_EXP_CLOSED_FORM)
EXERCISES = (GRADCAMPP_SCORE_MODEL, TWICE_DIFFERENTIATED, ALPHA_SOLVED, GRADCAMPP_ALPHAS_GENERAL, EXP_CHAIN_RULE,
             EXP_SCORE_DERIVATIVES, ALPHA_EXP_CLOSED_FORM, GRADCAMPP_ALPHA_CLOSED_FORM, GRADCAMPP_WEIGHTS_FROM_ALPHAS)
