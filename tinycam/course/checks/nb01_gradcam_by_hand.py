"""Notebook 01, Grad-CAM by hand: the weights α_k^c (the mean of the gradients), the map, the counterfactual."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake


def _maps_cases(rng, with_acts):
    """The lecture example, then random (K, H, W) and batched (B, K, H, W) cases with H ≠ W ≠ K."""
    ex = lecture.worked_example()
    cases = [("the lecture example", (ex["acts"], ex["grads"]) if with_acts else (ex["grads"],))]
    for shape in [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (4, 1, 5, 3)]:
        acts, grads = rng.normal(size=shape), rng.normal(size=shape)
        label = "a random batch " if len(shape) == 4 else "random maps "
        cases.append((label + "x".join(map(str, shape)), (acts, grads) if with_acts else (grads,)))
    return cases


GRADCAM_WEIGHTS = Exercise(
    "gradcam_weights", "01_gradcam_by_hand", points=2,  # answer(grads) -> α_k^c, grads (..., K, H, W)
    cases=lambda seed: _maps_cases(np.random.default_rng(seed), with_acts=False),
    expected=reference.gradcam_weights,
    hint="α_k^c = (1/Z) Σ_i Σ_j ∂y^c/∂A^k_ij: the average of each gradient map over its own pixels, one weight "
         "per map (and per image, when the maps come in a batch)",
    mistakes=(
        Mistake("you summed the gradients: Grad-CAM averages them (divide by Z = H·W)",
                lambda g: np.sum(g, axis=(-2, -1))),
        Mistake("average over the two spatial axes (the last two), keeping the feature-map axis k",
                lambda g: np.mean(g, axis=-3)),
        Mistake("check the sign: α is the mean of the gradients themselves (the negated version is the counterfactual)",
                lambda g: -np.mean(g, axis=(-2, -1))),
        Mistake("no ReLU here: Grad-CAM averages the raw gradients (the ReLU comes after the weighted sum)",
                lambda g: np.mean(np.maximum(g, 0), axis=(-2, -1))),
        Mistake("no ReLU on the weights: a map whose gradients lower the score keeps its negative weight (the only "
                "ReLU comes after the weighted sum of the maps)", lambda g: np.maximum(np.mean(g, axis=(-2, -1)), 0)),
    ),
)


GRADCAM_MAP = Exercise(
    "gradcam_map", "01_gradcam_by_hand", points=2,  # answer(weights, acts) -> ReLU(Σ_k w_k A^k)
    cases=lambda seed: [(label, (reference.gradcam_weights(grads), acts))
                        for label, (acts, grads) in _maps_cases(np.random.default_rng(seed), True)],
    expected=reference.localization_map,
    hint="weight each feature map by its α, add the weighted maps up over k, then keep the positive part",
    mistakes=(
        Mistake("you forgot the ReLU: Grad-CAM keeps only the positive evidence, max(L, 0)",
                lambda w, a: reference.weighted_combination(w, a)),
        Mistake("check the sign: the map adds up the weighted maps themselves (negating them gives the "
                "counterfactual map)", lambda w, a: reference.localization_map(-np.asarray(w), a)),
        Mistake("ReLU is max(L, 0), not |L|: negative evidence is dropped, not flipped",
                lambda w, a: np.abs(reference.weighted_combination(w, a))),
        Mistake("apply the ReLU after the weighted sum, not to each feature map before it",
                lambda w, a: reference.weighted_combination(w, np.maximum(a, 0))),
        Mistake("the weights keep their sign: a map with a negative weight counts against the class, and the only "
                "ReLU is on the summed map", lambda w, a: reference.localization_map(np.maximum(w, 0), a)),
        Mistake("add up the weighted maps over k, don't average them",
                lambda w, a: reference.localization_map(w, a) / np.shape(a)[-3]),
        Mistake("the weights are already averages: the map needs no further division by Z",
                lambda w, a: reference.localization_map(w, a) / (np.shape(a)[-1] * np.shape(a)[-2])),
        Mistake("return the map itself: scaling it to [0, 1] is for display and comes later",
                lambda w, a: reference.normalize(reference.localization_map(w, a))),
        Mistake("your map is transposed: its rows and columns are the feature maps' rows and columns",
                lambda w, a: np.swapaxes(reference.localization_map(w, a), -1, -2)),
    ),
)


COUNTERFACTUAL_WEIGHTS = Exercise(
    "counterfactual_weights", "01_gradcam_by_hand", points=1,  # answer(grads) -> (1/Z) Σ_ij −∂y^c/∂A^k_ij
    cases=lambda seed: _maps_cases(np.random.default_rng(seed), with_acts=False),
    expected=reference.counterfactual_weights,
    hint="w_k^c = (1/Z) Σ_ij (−∂y^c/∂A^k_ij)",
    mistakes=(
        Mistake("negate the gradients: the counterfactual asks what would *lower* y^c",
                lambda g: np.mean(g, axis=(-2, -1))),
        Mistake("you summed: average over the Z = H·W pixels, as for Grad-CAM",
                lambda g: -np.sum(g, axis=(-2, -1))),
        Mistake("no ReLU on the weights: negate and average, nothing more",
                lambda g: np.maximum(-np.mean(g, axis=(-2, -1)), 0)),
    ),
)


EXERCISES = (GRADCAM_WEIGHTS, GRADCAM_MAP, COUNTERFACTUAL_WEIGHTS)
