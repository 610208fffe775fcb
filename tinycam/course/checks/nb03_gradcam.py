"""Notebook 03, Grad-CAM on trained networks: the weights, the map and the counterfactual in torch, on batches."""

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake

# The exercises of notebook 03 take batched torch tensors (B, K, h, w), as `tinycam.capture` returns them. The cases
# are float64 tensors so that an answer written with torch operations can be compared exactly with the reference.


def _torch_maps_cases(seed):
    """[(label, (acts, grads))] as float64 torch tensors (B, K, h, w): the lecture example as a batch of one, then
    random batches, some shaped like the GAP network's last layer (64 x 16 x 16, acts ≥ 0 as after a ReLU) and the
    FC network's (16 x 8 x 8)."""
    import torch  # imported here, so the NumPy-only notebooks never pay for it

    ex = lecture.worked_example()
    cases = [("the lecture example as a batch of one (1, 3, 2, 2)",
              (torch.tensor(ex["acts"])[None], torch.tensor(ex["grads"])[None]))]
    rng = np.random.default_rng(seed)
    for shape, after_relu in [((2, 5, 3, 4), False), ((3, 4, 6, 2), False), ((2, 64, 16, 16), True),
                              ((3, 16, 8, 8), True), ((1, 7, 5, 5), False)]:
        acts = rng.normal(size=shape)
        if after_relu:
            acts = np.maximum(acts, 0.0)
        grads = rng.normal(size=shape) * rng.uniform(0.01, 1.0)
        label = f"a random batch {'x'.join(map(str, shape))}" + (" (acts ≥ 0)" if after_relu else "")
        cases.append((label, (torch.from_numpy(acts), torch.from_numpy(grads))))
    return cases


def _np(x):
    """A float64 NumPy copy of a tensor (or array)."""
    return np.array(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)


GRADCAM_WEIGHTS_TORCH = Exercise(
    "gradcam_weights_torch", "03_gradcam", points=2,  # answer(grads) -> α, torch (B, K, h, w) -> (B, K)
    cases=lambda seed: [(label, (grads,)) for label, (_, grads) in _torch_maps_cases(seed)],
    expected=lambda g: reference.gradcam_weights(_np(g)),
    hint="α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij: the average of each gradient map over its pixels, one weight per image "
         "and map, in the inputs' precision (float64)",
    mistakes=(
        Mistake("you summed the gradients: Grad-CAM averages them (divide by Z = h·w)",
                lambda g: _np(g).sum(axis=(-2, -1))),
        Mistake("keep the batch axis: every image has its own weights, shape (B, K); average over each map's pixels "
                "only",
                lambda g: _np(g).mean(axis=(0, -2, -1))),
        Mistake("average over the two spatial axes (h, w), not over the feature maps",
                lambda g: _np(g).mean(axis=1)),
        Mistake("check the sign: α is the mean of the gradients themselves (the negated version is the counterfactual)",
                lambda g: -_np(g).mean(axis=(-2, -1))),
        Mistake("no ReLU here: Grad-CAM averages the raw gradients, negative ones included",
                lambda g: np.maximum(_np(g), 0.0).mean(axis=(-2, -1))),
        Mistake("no ReLU on the weights: a map whose gradients lower the score keeps its negative weight (the only "
                "ReLU comes after the weighted sum of the maps)",
                lambda g: np.maximum(_np(g).mean(axis=(-2, -1)), 0.0)),
    ),
)


GRADCAM_TORCH = Exercise(
    "gradcam_torch", "03_gradcam", points=2,  # answer(acts, grads) -> ReLU(Σ_k α_k A^k), (B, K, h, w) -> (B, h, w)
    cases=_torch_maps_cases,
    expected=lambda a, g: reference.gradcam(_np(a), _np(g)),
    hint="weights = the mean of each gradient map; then, image by image, weight the feature maps, add them up over "
         "k and keep the positive part",
    mistakes=(
        Mistake("you forgot the ReLU: Grad-CAM keeps only the positive evidence, max(L, 0)",
                lambda a, g: reference.weighted_combination(reference.gradcam_weights(_np(g)), _np(a))),
        Mistake("the weights are the *means* of the gradient maps: your map is Z = h·w times too large",
                lambda a, g: reference.localization_map(_np(g).sum(axis=(-2, -1)), _np(a))),
        Mistake("apply the ReLU once, to the sum over k, not to each weighted map α_k A^k",
                lambda a, g: np.maximum(reference.gradcam_weights(_np(g))[..., None, None] * _np(a), 0.0).sum(axis=-3)),
        Mistake("Grad-CAM weights each whole map by one number, the mean of its gradient map, "
                "not each pixel by its own gradient (that would be ReLU(Σ_k G^k ⊙ A^k))",
                lambda a, g: np.maximum((_np(g) * _np(a)).sum(axis=-3), 0.0)),
        Mistake("keep the batch axis: each image's map uses that image's own weights, shape (B, K)",
                lambda a, g: reference.localization_map(np.broadcast_to(_np(g).mean(axis=(0, -2, -1)), _np(g).shape[:2]), _np(a))),
        Mistake("weight the feature maps A^k, not the gradient maps",
                lambda a, g: reference.localization_map(reference.gradcam_weights(_np(g)), _np(g))),
        Mistake("check the sign: this is the counterfactual map; Grad-CAM weights the maps by the mean gradients "
                "themselves", lambda a, g: reference.counterfactual(_np(a), _np(g))),
        Mistake("the weights keep their sign: a map with a negative weight counts against the class, and the only "
                "ReLU is on the summed map",
                lambda a, g: reference.localization_map(np.maximum(reference.gradcam_weights(_np(g)), 0.0), _np(a))),
        Mistake("return the map itself: scaling each image's map to [0, 1] is for display and comes later",
                lambda a, g: reference.normalize(reference.gradcam(_np(a), _np(g)))),
        Mistake("your maps are transposed: their rows and columns are the feature maps' rows and columns",
                lambda a, g: np.swapaxes(reference.gradcam(_np(a), _np(g)), -1, -2)),
    ),
)


COUNTERFACTUAL_TORCH = Exercise(
    "counterfactual_torch", "03_gradcam", points=1,  # answer(acts, grads) -> ReLU(Σ_k w_k A^k), w = mean(−grads)
    cases=_torch_maps_cases,
    expected=lambda a, g: reference.counterfactual(_np(a), _np(g)),
    hint="weights = the mean of each negated gradient map; then, image by image, weight the feature maps, add them "
         "up over k and keep the positive part",
    mistakes=(
        Mistake("negate the gradients: the counterfactual map shows what would *lower* y^c",
                lambda a, g: reference.gradcam(_np(a), _np(g))),
        Mistake("negate before the ReLU: ReLU(−L), not −ReLU(L) (a map of evidence is never negative)",
                lambda a, g: -reference.gradcam(_np(a), _np(g))),
        Mistake("the weights are the *means* of the negated gradient maps: your map is Z = h·w times too large",
                lambda a, g: reference.localization_map(-_np(g).sum(axis=(-2, -1)), _np(a))),
        Mistake("no ReLU on the gradients: negate and average them all; the only ReLU is on the final map",
                lambda a, g: reference.localization_map(np.maximum(-_np(g), 0.0).mean(axis=(-2, -1)), _np(a))),
        Mistake("no ReLU on the weights: they keep their sign, and the only ReLU is on the final map",
                lambda a, g: reference.localization_map(np.maximum(-_np(g).mean(axis=(-2, -1)), 0.0), _np(a))),
        Mistake("your maps are transposed: their rows and columns are the feature maps' rows and columns",
                lambda a, g: np.swapaxes(reference.counterfactual(_np(a), _np(g)), -1, -2)),
    ),
)


EXERCISES = (GRADCAM_WEIGHTS_TORCH, GRADCAM_TORCH, COUNTERFACTUAL_TORCH)
