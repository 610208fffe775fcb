"""Notebook 06, is the explanation right? The HiResCAM map, Spearman's rank correlation of two maps (the sanity
checks' similarity), and the area under a deletion curve (RISE's faithfulness score)."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake

# All three exercises take NumPy arrays. The expected answers come from the library: `reference.hirescam` (NumPy),
# `metrics.spearman` and `faithfulness.area_under_curve` (torch, imported inside the functions that need it, so
# importing the checks never imports torch).


# ---------------------------------------------------------------------------------------------------------------
# Exercise 1: the HiResCAM map, ReLU(Σ_k ∂y/∂A^k ⊙ A^k)


def _hirescam_cases(seed):
    """[(label, (acts, grads))] (..., K, H, W): the handwritten example of notebook 01, then random maps as a ReLU
    layer gives them (activations ≥ 0 with exact zeros) with gradients of both signs, some batched."""
    rng = np.random.default_rng(seed)
    example = lecture.worked_example()
    cases = [("the handwritten example of notebook 01", (example["acts"], example["grads"]))]
    for shape in [(4, 3, 5), (2, 6, 4, 4), (8, 6, 6), (3, 5, 2, 7), (2, 2, 16, 3, 3)]:
        acts = np.maximum(rng.normal(size=shape), 0.0)
        grads = rng.normal(size=shape) * rng.uniform(0.2, 2.0)
        label = ("a random batch " if len(shape) > 3 else "random maps ") + "x".join(map(str, shape))
        cases.append((label, (acts, grads)))
    return cases


def _hirescam_slip(acts, grads, weights="grads", relu="after", reduce="sum"):
    """The HiResCAM map and its usual slips: `weights` "grads", "mean" (Grad-CAM's averaged gradients) or "positive"
    (LayerCAM's); `relu` "after" the sum over k, "each" product before it, or "none"; `reduce` "sum" or "mean" over k,
    or "space" (a sum over the pixels instead of the maps)."""
    acts, grads = np.asarray(acts, dtype=np.float64), np.asarray(grads, dtype=np.float64)
    if weights == "mean":
        grads = np.broadcast_to(grads.mean(axis=(-2, -1), keepdims=True), grads.shape)
    elif weights == "positive":
        grads = np.maximum(grads, 0.0)
    products = grads * acts
    if relu == "each":
        products = np.maximum(products, 0.0)
    combined = {"sum": lambda p: p.sum(axis=-3), "mean": lambda p: p.mean(axis=-3),
                "space": lambda p: p.sum(axis=(-2, -1))}[reduce](products)
    return np.maximum(combined, 0.0) if relu == "after" else combined


HIRESCAM_MAP = Exercise(
    "hirescam_map", "06_evaluating", points=2,  # answer(acts, grads) -> L, (..., K, H, W) -> (..., H, W)
    cases=_hirescam_cases, expected=reference.hirescam,
    hint="every activation is weighted by its own gradient (no averaging over the map), the weighted maps are added "
         "over k, and the ReLU is applied to that sum: one value per pixel",
    mistakes=(
        Mistake("that is Grad-CAM's map: HiResCAM does not average the gradients over the map, each activation keeps "
                "its own gradient as its weight", lambda a, g: _hirescam_slip(a, g, weights="mean")),
        Mistake("the gradients keep their sign (keeping only the positive ones is LayerCAM); the only ReLU comes "
                "after the sum over the maps", lambda a, g: _hirescam_slip(a, g, weights="positive")),
        Mistake("the ReLU acts on the sum over the maps, not on each map's product: a negative contribution of one "
                "map cancels a positive one of another", lambda a, g: _hirescam_slip(a, g, relu="each")),
        Mistake("the map keeps only the locations that speak for the class: apply a ReLU to the sum",
                lambda a, g: _hirescam_slip(a, g, relu="none")),
        Mistake("add the maps' contributions over k, do not average them", lambda a, g: _hirescam_slip(a, g, reduce="mean")),
        Mistake("add over the feature maps (the axis k before the two spatial ones), keeping one value per pixel",
                lambda a, g: _hirescam_slip(a, g, reduce="space")),
    ),
)


# ---------------------------------------------------------------------------------------------------------------
# Exercise 2: Spearman's rank correlation of two maps, ties by average rank

SPEARMAN_EXAMPLE = (np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 3.0], [0.0, 1.0, 4.0]]),
                    np.array([[0.0, 1.0, 1.0], [0.0, 3.0, 2.0], [0.0, 0.0, 5.0]]))


def _spearman_cases(seed):
    """[(label, (a, b))], two maps of one shape each: the notebook's 3×3 example (ties at 0 and 1), then random maps
    as CAMs are after their ReLU (a plateau of exact zeros), maps of small integers (many ties), signed maps (as
    gradients are) and a map with colour channels; never a constant map (its ρ is undefined)."""
    rng = np.random.default_rng(seed)
    cases = [("the notebook's 3x3 example", SPEARMAN_EXAMPLE)]
    for kind, shape in [("ReLU maps", (8, 8)), ("small-integer maps", (5, 7)), ("signed maps", (6, 6)),
                        ("ReLU maps", (16, 12)), ("signed small-integer maps", (4, 4)), ("colour maps", (3, 6, 5))]:
        if kind == "small-integer maps":
            a, b = rng.integers(0, 4, size=shape).astype(np.float64), rng.integers(0, 4, size=shape).astype(np.float64)
        elif kind == "signed small-integer maps":
            a, b = rng.integers(-3, 4, size=shape).astype(np.float64), rng.integers(-3, 4, size=shape).astype(np.float64)
        elif kind == "signed maps":
            a = rng.normal(size=shape)
            b = a + rng.normal(size=shape)
        else:
            a = np.maximum(rng.normal(size=shape), 0.0)
            b = np.maximum(a + rng.normal(size=shape) - 0.3, 0.0)
        for m in (a, b):
            m.flat[rng.integers(m.size)] += 1.0  # never constant
        cases.append((f"random {kind} " + "x".join(map(str, shape)), (a, b)))
    return cases


def _spearman_expected(a, b):
    import torch  # imported here, so importing the checks never imports torch

    from tinycam import metrics
    return float(metrics.spearman(torch.from_numpy(np.asarray(a, dtype=np.float64))[None],
                                  torch.from_numpy(np.asarray(b, dtype=np.float64))[None])[0])


def _ranks(values, method):
    """Ranks (from 0) of the flattened values: "average" for ties, "ordinal" (ties in the order met), "min"
    (every tied value gets the lowest rank of its group), "dense" (groups numbered 0, 1, 2, ...), or "argsort" (the
    positions of the sorted values, not ranks)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    if method == "argsort":
        return order.astype(np.float64)
    ordinal = np.empty(x.size)
    ordinal[order] = np.arange(x.size)
    if method == "ordinal":
        return ordinal
    unique, inverse = np.unique(x, return_inverse=True)
    if method == "dense":
        return inverse.astype(np.float64)
    first = np.full(unique.size, np.inf)
    np.minimum.at(first, inverse, ordinal)
    if method == "min":
        return first[inverse]
    last = np.full(unique.size, -np.inf)
    np.maximum.at(last, inverse, ordinal)
    return ((first + last) / 2)[inverse]


def _pearson(x, y):
    x, y = np.ravel(x) - np.mean(x), np.ravel(y) - np.mean(y)
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def _spearman_shortcut(a, b):
    """1 − 6 Σ d² / (n (n² − 1)) with average ranks: Spearman's ρ only when there are no ties."""
    d = _ranks(a, "average") - _ranks(b, "average")
    n = d.size
    return 1.0 - 6.0 * float((d * d).sum()) / (n * (n * n - 1))


SPEARMAN_RHO = Exercise(
    "spearman_rho", "06_evaluating", points=3,  # answer(a, b) -> ρ, two maps of one shape -> a number
    cases=_spearman_cases, expected=_spearman_expected,
    hint="replace every value of each map by its rank among that map's values (tied values share the average of the "
         "ranks they occupy), then take the ordinary correlation coefficient of the two rank maps",
    mistakes=(
        Mistake("Spearman's ρ correlates the ranks of the values, not the values themselves: that is Pearson's "
                "correlation", lambda a, b: _pearson(a, b)),
        Mistake("tied values must share one rank, the average of the positions they occupy; breaking ties in the "
                "order the pixels come gives equal values different ranks",
                lambda a, b: _pearson(_ranks(a, "ordinal"), _ranks(b, "ordinal"))),
        Mistake("tied values share the average of the ranks they occupy, not the lowest of them",
                lambda a, b: _pearson(_ranks(a, "min"), _ranks(b, "min"))),
        Mistake("tied values share the average of the ranks they occupy; numbering the distinct values one after the "
                "other squeezes the ranks together", lambda a, b: _pearson(_ranks(a, "dense"), _ranks(b, "dense"))),
        Mistake("sorting gives, for each place in the sorted order, which pixel goes there; a pixel's rank is the "
                "other way round: which place its value takes",
                lambda a, b: _pearson(_ranks(a, "argsort"), _ranks(b, "argsort"))),
        Mistake("the formula with the squared rank differences holds only when no two values are tied; with ties, "
                "compute the correlation coefficient of the ranks", _spearman_shortcut),
        Mistake("rank the values as they are, sign included: ranking their absolute values is the other variant of "
                "the sanity checks, a different measure", lambda a, b: _spearman_expected(np.abs(a), np.abs(b))),
    ),
)


# ---------------------------------------------------------------------------------------------------------------
# Exercise 3: the area under a deletion curve

DELETION_EXAMPLE = np.array([0.9, 0.6, 0.3, 0.2, 0.1])  # 4 steps: 0, 1/4, 1/2, 3/4 and all of the pixels deleted


def _deletion_cases(seed):
    """[(label, (probabilities,))] (..., n + 1): the notebook's 5-point curve, then random curves that mostly fall
    (probabilities in [0, 1]) with n from 2 to 64, single and batched."""
    rng = np.random.default_rng(seed)
    cases = [("the notebook's curve of 4 steps", (DELETION_EXAMPLE,))]
    for shape in [(17,), (3, 9), (33,), (2, 4, 5), (65,), (5, 3)]:
        falls = np.cumsum(rng.exponential(size=shape), axis=-1)
        probabilities = np.clip(np.exp(-falls / shape[-1] * rng.uniform(1, 6)) + rng.normal(scale=0.05, size=shape),
                                0.0, 1.0)
        label = ("random curves " if len(shape) > 1 else "a random curve ") + "x".join(map(str, shape))
        cases.append((label, (probabilities,)))
    return cases


def _deletion_expected(probabilities):
    import torch  # imported here, so importing the checks never imports torch

    from tinycam import faithfulness
    p = np.asarray(probabilities, dtype=np.float64)
    steps = p.shape[-1] - 1
    fractions = torch.arange(steps + 1, dtype=torch.float64) / steps
    auc = faithfulness.area_under_curve(fractions, torch.from_numpy(p.reshape(-1, steps + 1)))
    return auc.numpy().reshape(p.shape[:-1])


def _riemann(probabilities, which, width=None):
    """Σ over the n steps of width · (the step's left, right or mean end) or, for "trapezoid", its trapezoid."""
    p = np.asarray(probabilities, dtype=np.float64)
    steps = p.shape[-1] - 1
    heights = {"left": p[..., :-1], "right": p[..., 1:], "trapezoid": (p[..., :-1] + p[..., 1:]) / 2}[which]
    return heights.sum(axis=-1) * (1.0 / steps if width is None else width(steps))


DELETION_AUC = Exercise(
    "deletion_auc", "06_evaluating", points=2,  # answer(probabilities) -> AUC, (..., n + 1) -> (...)
    cases=_deletion_cases, expected=_deletion_expected,
    hint="the curve's points sit at the fractions 0, 1/n, …, 1 of the pixels deleted; each of the n steps between two "
         "neighbouring points adds a trapezoid (its width times the mean of its two heights): one area per curve",
    mistakes=(
        Mistake("the area is a sum of n trapezoids, one per step; the plain average of the n + 1 points gives the two "
                "end points a whole step each instead of half", lambda p: np.mean(p, axis=-1)),
        Mistake("each step's strip has the probabilities at both of its ends as heights (a trapezoid), not only the "
                "one before the step", lambda p: _riemann(p, "left")),
        Mistake("each step's strip has the probabilities at both of its ends as heights (a trapezoid), not only the "
                "one after the step", lambda p: _riemann(p, "right")),
        Mistake("the horizontal axis is the fraction of pixels deleted, from 0 to 1: each of the n steps is 1/n wide, "
                "not 1", lambda p: _riemann(p, "trapezoid", width=lambda n: 1.0)),
        Mistake("there are n steps between the n + 1 points, so each is 1/n wide, not 1/(n + 1)",
                lambda p: _riemann(p, "trapezoid", width=lambda n: 1.0 / (n + 1))),
        Mistake("the area lies under the probability curve, not above it", lambda p: 1.0 - _deletion_expected(p)),
        Mistake("one area per curve: a curve's points run along the last axis, the axes before it count the curves",
                lambda p: _riemann(np.moveaxis(np.asarray(p, dtype=np.float64), 0, -1), "trapezoid")),
    ),
)


EXERCISES = (HIRESCAM_MAP, SPEARMAN_RHO, DELETION_AUC)
