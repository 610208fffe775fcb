"""Notebook 02, CAM: the class score of a GAP + linear head, the map M_c = Σ_k w_k^c A^k, its weights from gradients."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake

# The visible example of notebook 02: notebook 01's three 2x2 feature maps with class weights (11, 17, 0.4), the sums
# of that example's gradient maps (Z·α with Z = 4), and a bias of −1.
_CAM_EXAMPLE_WEIGHTS = np.array([11.0, 17.0, 0.4])
_CAM_EXAMPLE_BIAS = -1.0


def _cam_cases(seed):
    """[(label, (acts, class_weights, bias))]: the lecture maps, random maps, and maps shaped like the GAP model's
    last layer (64 non-negative 16x16 maps); batches carry one weight vector and one bias per image."""
    rng = np.random.default_rng(seed)
    cases: list[tuple[str, tuple]] = [("the 2x2 example (notebook 01's maps, weights 11, 17, 0.4)",
              (lecture.worked_example()["acts"], _CAM_EXAMPLE_WEIGHTS, _CAM_EXAMPLE_BIAS))]
    for shape in [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (64, 16, 16), (2, 64, 16, 16)]:
        acts = rng.normal(size=shape)
        if shape[-1] == 16:
            acts = np.maximum(acts, 0.0)  # like a ReLU output
        label = ("a batch " if len(shape) == 4 else "maps ") + "x".join(map(str, shape))
        bias = rng.normal(size=shape[:-3]) + 0.5 if len(shape) == 4 else float(rng.normal()) + 0.5
        cases.append((label, (acts, rng.normal(size=shape[:-2]), bias)))
    return cases


def _cam_score(acts, weights, bias):
    """Y^c = Σ_k w_k^c (1/Z) Σ_ij A^k_ij + b^c."""
    return np.einsum("...k,...k->...", np.asarray(weights, dtype=np.float64), reference.gap(acts)) + bias


def _cam_score_cases(seed):
    """The cases of `_cam_cases`, the first one's label also naming its bias."""
    (label, args), *rest = _cam_cases(seed)
    return [(label + ", bias -1", args), *rest]


CAM_CLASS_SCORE = Exercise(
    "cam_class_score", "02_cam", points=1,  # answer(acts, class_weights, bias) -> Y^c, acts (..., K, H, W)
    cases=_cam_score_cases, expected=_cam_score,
    hint="Y^c = Σ_k w_k^c · mean_ij(A^k_ij) + b^c: average each map over its pixels, weight the averages by the "
         "class weights, add them up over k, add the bias",
    mistakes=(
        Mistake("you left out the bias b^c of the linear layer",
                lambda a, w, b: _cam_score(a, w, 0.0)),
        Mistake("the bias is added to the weighted sum, not subtracted",
                lambda a, w, b: _cam_score(a, w, -np.asarray(b))),
        Mistake("global average pooling averages the Z = H·W pixels of each map; you summed them",
                lambda a, w, b: np.einsum("...k,...k->...", w, np.sum(a, axis=(-2, -1))) + b),
        Mistake("add up the weighted features over k (Σ_k), don't average them",
                lambda a, w, b: np.mean(np.asarray(w) * reference.gap(a), axis=-1) + b),
        Mistake("Y^c is the class score (the logit), before the sigmoid",
                lambda a, w, b: 1.0 / (1.0 + np.exp(-_cam_score(a, w, b)))),
    ),
)


CAM_MAP = Exercise(
    "cam_map", "02_cam", points=2,  # answer(acts, class_weights) -> M_c = Σ_k w_k^c A^k, no ReLU
    cases=lambda seed: [(label, (acts, weights)) for label, (acts, weights, _) in _cam_cases(seed)],
    expected=reference.cam,
    hint="M_c = Σ_k w_k^c A^k: weight each feature map by its class weight and add the weighted maps up over k",
    mistakes=(
        Mistake("CAM has no ReLU (Zhou et al., section 2): keep the negative values of the weighted sum",
                lambda a, w: np.maximum(reference.cam(a, w), 0.0)),
        Mistake("you divided by Z = H·W: that is Grad-CAM's scale; CAM uses the classifier's weights w_k^c as they are",
                lambda a, w: reference.cam(a, w) / (np.shape(a)[-1] * np.shape(a)[-2])),
        Mistake("add up the weighted maps over k (Σ_k), don't average them",
                lambda a, w: reference.cam(a, w) / np.shape(a)[-3]),
        Mistake("return the raw weighted sum; scaling to [0, 1] is for display and comes later",
                lambda a, w: reference.normalize(reference.cam(a, w))),
        Mistake("check the sign: the map adds up the weighted maps themselves",
                lambda a, w: -reference.cam(a, w)),
        Mistake("the class weights keep their sign: a map with a negative weight counts against the class (CAM has "
                "no ReLU anywhere)", lambda a, w: reference.cam(a, np.maximum(w, 0.0))),
        Mistake("your map is transposed: its rows and columns are the feature maps' rows and columns",
                lambda a, w: np.swapaxes(reference.cam(a, w), -1, -2)),
    ),
)


def _cam_grads_cases(seed):
    """[(label, (grads,))]: the lecture's gradient maps, random ones, and the gradients of a GAP + linear head
    (every pixel of map k holds w_k / Z), alone and in a batch."""
    rng = np.random.default_rng(seed)
    cases = [("the lecture's gradient maps", (lecture.worked_example()["grads"],))]
    for shape in [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (4, 1, 5, 3)]:
        cases.append(("random gradients " + "x".join(map(str, shape)), (rng.normal(size=shape),)))
    for batch in [(), (2,)]:
        weights = rng.normal(size=(*batch, 64))
        grads = np.broadcast_to(weights[..., None, None] / 256.0, (*batch, 64, 16, 16)).copy()
        cases.append(("the gradients of a GAP + linear head, " + "x".join(map(str, grads.shape)), (grads,)))
    return cases


CAM_WEIGHTS_FROM_GRADS = Exercise(
    "cam_weights_from_grads", "02_cam", points=2,  # answer(grads) -> Σ_ij ∂Y^c/∂A^k_ij, (..., K, H, W) -> (..., K)
    cases=_cam_grads_cases, expected=reference.cam_weights_from_gradients,
    hint="w_k^c = Σ_i Σ_j ∂Y^c/∂A^k_ij: add up each gradient map over its own pixels, one weight per map",
    mistakes=(
        Mistake("you averaged: that is Grad-CAM's α_k^c = w_k^c / Z; CAM's weight is the sum over the Z pixels",
                lambda g: np.mean(g, axis=(-2, -1))),
        Mistake("sum over the two spatial axes (i, j) of each map, keeping one weight per feature map k",
                lambda g: np.sum(g, axis=-3)),
        Mistake("you multiplied by Z once too often: each pixel carries w_k^c / Z, so the plain sum is w_k^c",
                lambda g: np.sum(g, axis=(-2, -1)) * np.shape(g)[-1] * np.shape(g)[-2]),
        Mistake("no ReLU here: sum the raw gradients, negative ones included",
                lambda g: np.sum(np.maximum(g, 0.0), axis=(-2, -1))),
        Mistake("check the sign: the weight is the sum of the gradients themselves",
                lambda g: -np.sum(g, axis=(-2, -1))),
        Mistake("no ReLU on the weights: a map that lowers the score has a negative class weight, and CAM keeps it",
                lambda g: np.maximum(np.sum(g, axis=(-2, -1)), 0.0)),
    ),
)


EXERCISES = (CAM_CLASS_SCORE, CAM_MAP, CAM_WEIGHTS_FROM_GRADS)
