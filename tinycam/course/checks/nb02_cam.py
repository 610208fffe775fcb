"""Notebook 02, CAM: the class score of a GAP + linear head, the map M_c = Σ_k w_k^c A^k, the CAM → Grad-CAM
derivation step by step (`derivation.Step`: proved on SymPy symbols, then checked against autograd), and CAM's weights
from gradients."""

import functools

import numpy as np

from tinycam import reference
from tinycam.course import lecture
from tinycam.course.checks.derivation import Step, is_symbolic
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


# ---------------------------------------------------------------------------------------------------------------
# The CAM → Grad-CAM derivation (section 6), one exercise per step. The student's function takes the step's symbols:
# `maps`, K lists of Z activations (map k's pixels flattened: GAP does not care where a pixel is), `weights`, the K
# class weights w_k^c, `bias`, b^c, and the map k and the pixel of the activation A^k_ij the step is about. It uses
# arithmetic only, so the check runs it on SymPy symbols (proved equal to the step, derived here with sympy.diff) and
# on numbers (compared with torch's autograd in float64; the grader judges these). The mistakes are written with
# arithmetic too: the same lambda is the wrong step on symbols and on numbers.


def _pooled(values):
    """The mean of a map's activations (one list, or one row of an array), written so that it runs on symbols."""
    return sum(values) / len(values)


def _gap_symbols():
    """[(what, (maps, weights, bias, k, pixel))] of SymPy symbols: two sizes, so that no count written in fits both."""
    import sympy

    cases = []
    for n_maps, n_pixels, k, pixel in [(3, 5, 1, 2), (2, 4, 0, 1)]:
        maps = [[sympy.Symbol(f"A^{m}_{p}") for p in range(n_pixels)] for m in range(n_maps)]
        weights = [sympy.Symbol(f"w_{m}") for m in range(n_maps)]
        cases.append((f"symbols (K = {n_maps} maps of Z = {n_pixels} pixels)",
                      (maps, weights, sympy.Symbol("b"), k, pixel)))
    return cases


@functools.lru_cache(maxsize=1)
def _gap_model_maps():
    """The GAP model's last-layer maps of notebook 02's 64 test images, flattened, (64, 64, 256) float64; its class
    weights (3, 64), biases (3,), and each image's predicted class (64,)."""
    import torch

    import tinycam
    from tinycam.shapes import make_images

    model = tinycam.load_model("gap")
    images = torch.from_numpy(make_images(64, seed=10000).images)
    captured = tinycam.capture(model, images, model.last_conv, gradients=False)
    maps = captured.acts.double().flatten(start_dim=-2).numpy()
    return (maps, model.classifier.weight.detach().double().numpy(), model.classifier.bias.detach().double().numpy(),
            captured.targets.numpy())


def _gap_cases(seed):
    """[(what, (maps, weights, bias, k, pixel))] of numbers: notebook 01's three 2x2 maps (4 pixels each, weights
    11, 17, 0.4, bias -1), random maps of several sizes, and one test image's maps in the trained GAP model."""
    rng = np.random.default_rng(seed)
    example = lecture.worked_example()["acts"].reshape(3, 4)
    cases = [("the 2x2 example (notebook 01's maps; w = 11, 17, 0.4; b = -1)",
              (example, _CAM_EXAMPLE_WEIGHTS, _CAM_EXAMPLE_BIAS, 1, 2))]
    for n_maps, n_pixels in [(3, 5), (5, 7), (2, 12), (4, 9)]:
        k, pixel = int(rng.integers(n_maps)), int(rng.integers(n_pixels))
        cases.append((f"random maps (K = {n_maps} maps of Z = {n_pixels} pixels)",
                      (rng.normal(size=(n_maps, n_pixels)), rng.normal(size=n_maps), float(rng.normal()), k, pixel)))
    maps, weights, biases, targets = _gap_model_maps()
    image = int(rng.integers(len(maps)))
    c, k, pixel = int(targets[image]), int(rng.integers(maps.shape[1])), int(rng.integers(maps.shape[2]))
    cases.append((f"the GAP model's maps of test image #{image}, class {c} (K = 64 maps of Z = 256 pixels)",
                  (maps[image].copy(), weights[c].copy(), float(biases[c]), k, pixel)))
    return cases


def _step_cases(cases, n_args):
    """`cases` keeping the first `n_args` of (maps, weights, bias, k, pixel), the label naming k and the pixel when
    they are kept."""
    kept = []
    for what, args in cases:
        where = "" if n_args < 4 else f", k = {args[3]}" + ("" if n_args < 5 else f", pixel {args[4]}")
        kept.append((what + where, args[:n_args]))
    return kept


def _head(maps, weights, bias):
    """(Y^c, ∂Y^c/∂A as a (K, Z) array) by torch's autograd through a GAP + linear head, in float64."""
    import torch

    acts = torch.tensor(np.asarray(maps, dtype=np.float64), requires_grad=True)
    weight = torch.as_tensor(np.asarray(weights, dtype=np.float64)).reshape(1, -1)
    score = torch.nn.functional.linear(acts.mean(dim=-1), weight, torch.tensor([float(bias)], dtype=torch.float64))
    (grads,) = torch.autograd.grad(score.sum(), acts)
    return score.item(), grads.numpy()


def _gap_score(maps, weights, bias):
    """Y^c of a GAP + linear head: written out with SymPy on symbols, torch's forward pass on numbers."""
    if is_symbolic(bias):
        import sympy

        return sum(w * sympy.Rational(1, len(m)) * sum(m) for w, m in zip(weights, maps, strict=True)) + bias
    return _head(maps, weights, bias)[0]


def _gradient_maps(maps, weights, bias):
    """∂Y^c/∂A^k_p for every map k and pixel p: sympy.diff of the score on symbols, torch's autograd on numbers."""
    if is_symbolic(bias):
        import sympy

        score = _gap_score(maps, weights, bias)
        return [[sympy.diff(score, a) for a in m] for m in maps]
    return _head(maps, weights, bias)[1]


_FIXED_Z = ("Z is the number of pixels of each map you are given, and it changes from case to case; a number written "
            "into your function, like the notebook's Z = 256, fits one layer only")
_SIGN = "check the sign: a positive class weight makes the score grow with the activations of its map"


GAP_SCORE = Step(
    "gap_score", "02_cam", points=1,  # answer(maps, weights, bias) -> Y^c; maps: K lists of Z activations
    cases=lambda seed: _step_cases(_gap_cases(seed), 3), expected=_gap_score,
    symbols=lambda: _step_cases(_gap_symbols(), 3), statement="the class score Y^c",
    hint="Y^c is the bias plus, for each map k, its class weight times the map's pooled value F^k, the mean of its Z "
         "activations",
    mistakes=(
        Mistake("global average pooling averages the Z activations of each map; you added them up",
                lambda m, w, b: sum(wk * sum(mk) for wk, mk in zip(w, m)) + b),
        Mistake("you left out the bias b^c of the linear layer",
                lambda m, w, b: sum(wk * _pooled(mk) for wk, mk in zip(w, m))),
        Mistake("the bias is added to the weighted sum, not subtracted",
                lambda m, w, b: sum(wk * _pooled(mk) for wk, mk in zip(w, m)) - b),
        Mistake("add up the weighted pooled values over k (Σ_k), don't average them",
                lambda m, w, b: sum(wk * _pooled(mk) for wk, mk in zip(w, m)) / len(w) + b),
        Mistake("each weight multiplies the pooled value of its own map: Σ_k w_k^c F^k, not (Σ_k w_k^c)(Σ_k F^k)",
                lambda m, w, b: sum(w) * sum(_pooled(mk) for mk in m) + b),
        Mistake(_FIXED_Z, lambda m, w, b: sum(wk * sum(mk) for wk, mk in zip(w, m)) / 256 + b),
    ),
)


GAP_SCORE_GRADIENT = Step(
    "gap_score_gradient", "02_cam", points=2,  # answer(maps, weights, bias, k, pixel) -> ∂Y^c/∂A^k_pixel
    cases=lambda seed: _step_cases(_gap_cases(seed), 5),
    expected=lambda m, w, b, k, p: _gradient_maps(m, w, b)[k][p],
    symbols=lambda: _step_cases(_gap_symbols(), 5), statement="∂Y^c/∂A^k_ij",
    hint="follow the one path from A^k_ij to the score, through the pooled value F^k: multiply how much F^k moves per "
         "unit of A^k_ij by how much Y^c moves per unit of F^k",
    mistakes=(
        Mistake("the activation reaches the score through the pooled value F^k: how much does F^k, an average of Z "
                "activations, move when one of them grows by 1?", lambda m, w, b, k, p: w[k]),
        Mistake("you left out the second link of the chain: how much does Y^c move when F^k grows by 1?",
                lambda m, w, b, k, p: 1 / len(m[k])),
        Mistake("pooling averages: one activation moves F^k by a fraction of its own change, not a multiple",
                lambda m, w, b, k, p: w[k] * len(m[k])),
        Mistake("the score is linear in each activation: the derivative of (a constant times A^k_ij) is the constant, "
                "A^k_ij itself drops out", lambda m, w, b, k, p: w[k] * m[k][p] / len(m[k])),
        Mistake("only map k's pooled value F^k contains A^k_ij: the other maps' terms do not change with it, so their "
                "derivatives are 0", lambda m, w, b, k, p: sum(w) / len(m[k])),
        Mistake("wrong index: the weight that multiplies A^k_ij is the one of its map k, not one picked by its pixel",
                lambda m, w, b, k, p: w[p % len(w)] / len(m[k])),
        Mistake(_SIGN, lambda m, w, b, k, p: -w[k] / len(m[k])),
        Mistake("the bias is a constant: its derivative is 0", lambda m, w, b, k, p: w[k] / len(m[k]) + b),
        Mistake("Z is the number of pixels of one map, not the number of maps K",
                lambda m, w, b, k, p: w[k] / len(m)),
        Mistake(_FIXED_Z, lambda m, w, b, k, p: w[k] / 256),
    ),
)


GAP_GRADIENT_SUM = Step(
    "gap_gradient_sum", "02_cam", points=1,  # answer(maps, weights, bias, k) -> Σ_ij ∂Y^c/∂A^k_ij
    cases=lambda seed: _step_cases(_gap_cases(seed), 4),
    expected=lambda m, w, b, k: sum(_gradient_maps(m, w, b)[k]),
    symbols=lambda: _step_cases(_gap_symbols(), 4), statement="Σ_ij ∂Y^c/∂A^k_ij",
    hint="add up step 2's gradient over the Z pixels of map k, using what step 3 says about how it depends on the pixel",
    mistakes=(
        Mistake("every one of the Z pixels of map k has the same gradient: their sum is Z times one of them, not one "
                "of them", lambda m, w, b, k: w[k] / len(m[k])),
        Mistake("each pixel's gradient already carries the pooling's 1/Z (step 2): you added up Z copies of the weight "
                "itself", lambda m, w, b, k: w[k] * len(m[k])),
        Mistake("add up the gradient of map k over its own pixels; the other maps' gradients are other sums",
                lambda m, w, b, k: sum(w)),
        Mistake("you added up the pixels' contributions to the score (w_k^c A^k_ij / Z, together map k's term "
                "w_k^c F^k), not their gradients, which do not contain A",
                lambda m, w, b, k: w[k] * sum(m[k]) / len(m[k])),
        Mistake(_SIGN, lambda m, w, b, k: -w[k]),
        Mistake(_FIXED_Z, lambda m, w, b, k: w[k] / 256),
    ),
)


GAP_GRADCAM_WEIGHT = Step(
    "gap_gradcam_weight", "02_cam", points=1,  # answer(maps, weights, bias, k) -> α_k^c
    cases=lambda seed: _step_cases(_gap_cases(seed), 4),
    expected=lambda m, w, b, k: sum(_gradient_maps(m, w, b)[k]) / len(m[k]),
    symbols=lambda: _step_cases(_gap_symbols(), 4), statement="Grad-CAM's α_k^c",
    hint="Grad-CAM's weight is the average of the gradient map over its Z pixels, as in notebook 01",
    mistakes=(
        Mistake("that is the sum of the gradient map (step 4): Grad-CAM averages it over the Z pixels",
                lambda m, w, b, k: w[k]),
        Mistake("you divided by Z twice: the average of Z equal numbers is that number",
                lambda m, w, b, k: w[k] / len(m[k]) ** 2),
        Mistake("averaging divides the sum of the Z pixels' gradients by Z; you multiplied",
                lambda m, w, b, k: w[k] * len(m[k])),
        Mistake("the gradient does not contain A: you averaged the pixels' contributions to the score, not their "
                "gradients", lambda m, w, b, k: w[k] * sum(m[k]) / len(m[k]) ** 2),
        Mistake("the average runs over the Z pixels of map k, not over the K maps",
                lambda m, w, b, k: w[k] / len(m)),
        Mistake("one weight per map: average the gradient of map k only",
                lambda m, w, b, k: sum(w) / len(m[k])),
        Mistake(_SIGN, lambda m, w, b, k: -w[k] / len(m[k])),
        Mistake(_FIXED_Z, lambda m, w, b, k: w[k] / 256),
    ),
)


EXERCISES = (CAM_CLASS_SCORE, CAM_MAP, GAP_SCORE, GAP_SCORE_GRADIENT, GAP_GRADIENT_SUM, GAP_GRADCAM_WEIGHT,
             CAM_WEIGHTS_FROM_GRADS)
