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
    hint="α_k^c = (1/Z) Σ_i Σ_j ∂y^c/∂A^k_ij: use axis=(-2, -1) so batches work too",
    mistakes=(
        Mistake("you summed the gradients: Grad-CAM averages them (divide by Z = H·W)",
                lambda g: np.sum(g, axis=(-2, -1))),
        Mistake("average over the two spatial axes (the last two), keeping the feature-map axis k",
                lambda g: np.mean(g, axis=-3)),
        Mistake("check the sign: α is the mean of the gradients themselves (the negated version is the counterfactual)",
                lambda g: -np.mean(g, axis=(-2, -1))),
        Mistake("no ReLU here: Grad-CAM averages the raw gradients (the ReLU comes after the weighted sum)",
                lambda g: np.mean(np.maximum(g, 0), axis=(-2, -1))),
    ),
)


GRADCAM_MAP = Exercise(
    "gradcam_map", "01_gradcam_by_hand", points=2,  # answer(weights, acts) -> ReLU(Σ_k w_k A^k)
    cases=lambda seed: [(label, (reference.gradcam_weights(grads), acts))
                        for label, (acts, grads) in _maps_cases(np.random.default_rng(seed), True)],
    expected=reference.localization_map,
    hint="weight each map, sum over k (axis -3), then max(·, 0): w[..., :, None, None] * acts",
    mistakes=(
        Mistake("you forgot the ReLU: Grad-CAM keeps only the positive evidence, max(L, 0)",
                lambda w, a: reference.weighted_combination(w, a)),
        Mistake("ReLU is max(L, 0), not |L|: negative evidence is dropped, not flipped",
                lambda w, a: np.abs(reference.weighted_combination(w, a))),
        Mistake("apply the ReLU after the weighted sum, not to each feature map before it",
                lambda w, a: reference.weighted_combination(w, np.maximum(a, 0))),
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
