"""Notebook 04, pixel-level explanations: saliency from a gradient, the guided-ReLU backward rule, occlusion."""

import numpy as np

from tinycam.course.checks.framework import Exercise, Mistake


def _saliency_from_gradient_cases(seed):
    """answer(grads) -> max_c |grads|, (B, C, H, W) -> (B, H, W); random cases with B ≠ C so axis mix-ups show."""
    rng = np.random.default_rng(seed)
    example = np.array([[[[0.5, -2.0], [-0.25, 1.0]],
                         [[-1.5, 1.0], [-1.0, -0.5]],
                         [[1.0, 0.5], [-0.75, 3.0]]]])  # the notebook's example: 1 image, 3 channels, 2x2
    cases = [("the notebook's 1x3x2x2 example", (example,))]
    for shape in [(2, 3, 4, 5), (4, 3, 6, 6), (5, 1, 3, 4), (2, 4, 5, 3), (3, 2, 4, 4)]:
        grads = rng.normal(size=shape)
        cases.append(("random gradients " + "x".join(map(str, shape)), (grads,)))
    return cases


SALIENCY_FROM_GRADIENT = Exercise(
    "saliency_from_gradient", "04_pixel_level", points=1, cases=_saliency_from_gradient_cases,
    expected=lambda g: np.max(np.abs(g), axis=1),
    hint="M = the largest absolute gradient over the colour channels, pixel by pixel: first the absolute value, then "
         "the max over the colour-channel axis (the second of B, C, H, W)",
    mistakes=(
        Mistake("take the absolute value: a large negative gradient is as salient as a large positive one",
                lambda g: np.max(g, axis=1)),
        Mistake("the absolute value comes before the max: max_c |w_c|, not |max_c w_c|",
                lambda g: np.abs(np.max(g, axis=1))),
        Mistake("merge the colour channels with the max, not the sum",
                lambda g: np.sum(np.abs(g), axis=1)),
        Mistake("merge the colour channels with the max, not the mean",
                lambda g: np.mean(np.abs(g), axis=1)),
        Mistake("merge the colour channels with the max, not the Euclidean norm",
                lambda g: np.sqrt(np.sum(np.square(g), axis=1))),
        Mistake("your maps are transposed: their rows and columns are the image's rows and columns",
                lambda g: np.swapaxes(np.max(np.abs(g), axis=1), -1, -2)),
    ),
)


def _guided_relu_cases(seed):
    """answer(x, grad_out) -> [x > 0] · max(grad_out, 0), elementwise, any shape; inputs with exact zeros."""
    rng = np.random.default_rng(seed)
    cases = [("the notebook's six ReLUs", (np.array([1.5, -0.5, 2.0, -1.0, 0.0, 0.8]),
                                           np.array([0.6, 0.9, -1.2, -0.4, 0.7, 2.0])))]
    for shape in [(7,), (3, 5), (2, 3, 4, 4), (1, 8, 3, 2)]:
        x, grad_out = rng.normal(size=shape), rng.normal(size=shape)
        x[rng.random(shape) < 0.2] = 0.0  # a ReLU input exactly at 0: its derivative is taken as 0
        cases.append(("random arrays " + "x".join(map(str, shape)), (x, grad_out)))
    return cases


GUIDED_RELU_BACKWARD = Exercise(
    "guided_relu_backward", "04_pixel_level", points=2, cases=_guided_relu_cases,
    expected=lambda x, g: np.where(np.asarray(x) > 0, np.maximum(g, 0.0), 0.0),
    hint="two masks multiply the incoming gradient: the forward mask [x > 0] and the sign mask [grad_out > 0]",
    mistakes=(
        Mistake("that is plain backprop, [x > 0] · R: guided backprop also drops the negative gradients, max(R, 0)",
                lambda x, g: np.where(np.asarray(x) > 0, g, 0.0)),
        Mistake("that is the deconvnet rule, max(R, 0): guided backprop also keeps the forward mask [x > 0]",
                lambda x, g: np.maximum(g, 0.0)),
        Mistake("the mask is strict, x > 0: a ReLU whose input is exactly 0 passes nothing",
                lambda x, g: np.where(np.asarray(x) >= 0, np.maximum(g, 0.0), 0.0)),
        Mistake("multiply by the mask [x > 0] (0 or 1), not by the activation max(x, 0) itself",
                lambda x, g: np.maximum(x, 0.0) * np.maximum(g, 0.0)),
        Mistake("keep the positive gradients, max(R, 0), do not flip the negative ones with |R|",
                lambda x, g: np.where(np.asarray(x) > 0, np.abs(g), 0.0)),
    ),
)


def _occlusion_drop_cases(seed):
    """answer(weights, image, fill) -> Σ_c w_cij (I_cij − fill), (C, H, W) -> (H, W): a 1×1 patch on S = Σ w·I + b."""
    rng = np.random.default_rng(seed)
    weights = np.array([[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],
                        [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]])
    image = np.array([[[0.0, 0.5, 1.0], [0.0, 0.5, 1.0], [0.0, 0.5, 1.0]],
                      [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
    cases = [("the notebook's 2x3x3 example (fill 0.5)", (weights, image, 0.5))]
    for shape in [(3, 4, 5), (1, 3, 3), (3, 6, 4), (2, 5, 5)]:
        fill = float(np.round(rng.uniform(0.1, 0.9), 2))
        cases.append((f"a random {'x'.join(map(str, shape))} image, fill {fill}",
                      (rng.normal(size=shape), rng.random(shape), fill)))
    return cases


OCCLUSION_DROP = Exercise(
    "occlusion_drop", "04_pixel_level", points=2, cases=_occlusion_drop_cases,
    expected=lambda w, image, fill: np.sum(w * (image - fill), axis=0),
    hint="hiding pixel (i, j) changes channel c from I_cij to fill, so S drops by Σ_c w_cij (I_cij − fill)",
    mistakes=(
        Mistake("the drop is S(original) − S(occluded), not the other way round",
                lambda w, image, fill: np.sum(w * (fill - image), axis=0)),
        Mistake("the hidden pixel becomes `fill`, not 0: the drop is w · (I − fill)",
                lambda w, image, fill: np.sum(w * image, axis=0)),
        Mistake("add the drops of the colour channels (the patch hides all of them), don't take their max",
                lambda w, image, fill: np.max(w * (image - fill), axis=0)),
        Mistake("occlusion keeps the sign: a negative drop means hiding the pixel raises the score",
                lambda w, image, fill: np.abs(np.sum(w * (image - fill), axis=0))),
        Mistake("the drop depends on the image, not only on the weights (that would be the gradient)",
                lambda w, image, fill: np.sum(w, axis=0)),
        Mistake("your map is transposed: its rows and columns are the image's rows and columns",
                lambda w, image, fill: np.sum(w * (image - fill), axis=0).T),
    ),
)


EXERCISES = (SALIENCY_FROM_GRADIENT, GUIDED_RELU_BACKWARD, OCCLUSION_DROP)
