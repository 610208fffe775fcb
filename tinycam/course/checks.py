"""Immediate-feedback checks for the notebooks' graded exercises.

Each exercise asks the student to write a small function (or give a value); the next cell calls the check of the
same name, e.g. ``checks.gradcam_weights(gradcam_weights)``. A check runs the answer on the example the notebook
shows *and* on random cases (seeded; the grader uses seeds the student never sees), compares with the NumPy
reference, and

- prints one line ``✓ name: ...`` when every case agrees;
- prints ``✗ name: what was expected, what came back`` and a hint (recognising common mistakes: sum instead of
  mean, a missing ReLU, a wrong sign, the wrong axes...) and raises AssertionError when one does not;
- prints ``… name: not done yet`` and raises NotImplementedError while the answer is still the placeholder
  (a function raising NotImplementedError, or None for an exercise whose answer is a value).

An exercise is data (`Exercise`): its cases for a seed, the expected answer, the typical mistakes and a hint.
`EXERCISES` lists them all; the grader (`tinycam.course.grading`) draws hidden cases and judges answers with them.
"""

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from tinycam import conv, reference
from tinycam.course import lecture

__all__ = ["EXERCISES", "Exercise"]


def _show(x):
    text = np.array2string(np.asarray(x, dtype=np.float64), precision=4, suppress_small=True, separator=", ")
    return text.replace("\n", "\n    ")


def _disagreement(got, want, rtol=1e-9, atol=1e-12):
    """None when `got` equals `want` (shape and values), else a sentence saying how they differ."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected an array of shape {np.shape(want)}, got {type(got).__name__} {got!r:.80}"
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"expected shape {want.shape}, got shape {got.shape}"
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False):
        return f"expected\n    {_show(want)}\n  got\n    {_show(got)}"
    return None


@dataclass(frozen=True)
class Exercise:
    """One graded exercise. `cases(seed)` gives [(label, args)], the first being the notebook's own example;
    `expected(*args)` is the right answer; `mistakes` maps a hint to a function computing a typical wrong answer.
    For an exercise whose answer is a value (not a function), args are () and `judge_value` judges it."""

    name: str
    notebook: str
    points: int
    cases: Callable
    expected: Optional[Callable] = None
    mistakes: dict = field(default_factory=dict)
    hint: str = ""
    judge_value: Optional[Callable] = None  # value exercises: answer -> None or (problem, hint)
    success: str = ""  # value exercises: the ✓ line's text

    @property
    def is_value(self):
        return self.judge_value is not None

    def judge(self, label, args, got):
        """None when `got` is right for this case, else (problem, hint)."""
        if self.is_value:
            return self.judge_value(got)
        problem = _disagreement(got, self.expected(*args))
        if problem is None:
            return None
        hint = next((h for h, wrong in self.mistakes.items() if _disagreement(got, wrong(*args)) is None), self.hint)
        return f"wrong on {label}: {problem}", hint

    def check(self, answer, seed=0):
        """The notebook's check: print ✓, or print ✗ and raise AssertionError, or say "not done yet"."""
        if answer is None and self.is_value:
            _not_done(self.name)
        if not self.is_value and not callable(answer):
            _fail(self.name, f"expected the function you wrote, got {type(answer).__name__}",
                  f"pass `{self.name}` itself, not its result")
        cases = self.cases(seed)
        for label, args in cases:
            # the answer gets copies: an in-place answer (grads.neg_()) must not change what it is judged against
            got = answer if self.is_value else _call(self.name, answer, copy.deepcopy(args))
            verdict = self.judge(label, args, got)
            if verdict is not None:
                _fail(self.name, *verdict)
        print(f"✓ {self.name}: " + (self.success.format(answer=answer) if self.is_value else
                                     f"correct on {cases[0][0]} and {len(cases) - 1} more cases"))


EXERCISES: dict = {}


def _register(exercise):
    """Add the exercise to EXERCISES and expose `checks.<name>(answer)` for the notebook's check cell."""
    if exercise.name in EXERCISES or exercise.name in globals():
        raise ValueError(f"exercise name {exercise.name!r} is already taken: names are global across the course")
    EXERCISES[exercise.name] = exercise

    def check(answer, seed=0):
        return exercise.check(answer, seed)

    check.__name__ = check.__qualname__ = exercise.name
    check.__doc__ = f"Check exercise {exercise.name!r} of notebook {exercise.notebook} ({exercise.points} points)."
    globals()[exercise.name] = check
    __all__.append(exercise.name)
    return exercise


def _not_done(name):
    print(f"… {name}: not done yet — replace `raise NotImplementedError()` with your answer and run the cell")
    raise NotImplementedError(f"{name}: not done yet")


def _call(name, answer, args):
    try:
        return answer(*args)
    except NotImplementedError:
        _not_done(name)


def _fail(name, problem, hint):
    print(f"✗ {name}: {problem}\n  hint: {hint}")
    raise AssertionError(f"{name}: {problem.splitlines()[0]} (hint: {hint})")


# ---------------------------------------------------------------------------------------------------------------
# notebook 00: CNN arithmetic


def _output_size_cases(seed):
    """answer(w_in, k, stride, padding, dilation) -> ⌊(W_i + 2P − K − (K − 1)(d − 1)) / S⌋ + 1 as an int."""
    rng = np.random.default_rng(seed)
    s = lecture.conv_examples()["stride_example"]
    slide = (s["input"].shape[1], s["kernel"].shape[1], int(s["stride"]), int(s["padding"]), 1)
    cases = [("the slide's stride-2 example (W_i={}, K={}, S={}, P={}, d={})".format(*slide), slide)]
    while len(cases) < 25:
        w, k, s, p, d = (int(rng.integers(a, b)) for a, b in [(3, 70), (1, 8), (1, 5), (0, 4), (1, 4)])
        if w + 2 * p >= k + (k - 1) * (d - 1):
            cases.append((f"W_i={w}, K={k}, S={s}, P={p}, d={d}", (w, k, s, p, d)))
    return cases


_register(Exercise(
    "output_size", "00_cnn_arithmetic", points=2, cases=_output_size_cases, expected=conv.output_size,
    hint="W_o = ⌊(W_i + 2P − K_eff) / S⌋ + 1 with K_eff = K + (K − 1)(d − 1)",
    mistakes={
        "frameworks round down: use integer division // (an incomplete last window is dropped)":
            lambda w, k, s, p, d: (w + 2 * p - k - (k - 1) * (d - 1)) / s + 1,
        "a dilated kernel spans K + (K − 1)(d − 1) pixels, not K":
            lambda w, k, s, p, d: (w + 2 * p - k) // s + 1,
        "padding is added on both sides: 2P":
            lambda w, k, s, p, d: (w + p - k - (k - 1) * (d - 1)) // s + 1,
    },
))


def _conv2d_cases(seed):
    """answer(x, kernel, stride, padding) -> the zero-padded, strided cross-correlation of a 2-D x."""
    rng = np.random.default_rng(seed)
    ex = lecture.conv_examples()
    stride_ex, transposed_ex = ex["stride_example"], ex["transposed_example"]
    cases = [
        ("the slide's stride-2 example",
         (stride_ex["input"], stride_ex["kernel"], int(stride_ex["stride"]), int(stride_ex["padding"]))),
        ("the slide's 4x4 example", (transposed_ex["input"], transposed_ex["kernel"], 1, 0)),
    ]
    for _ in range(6):
        h, w, k = int(rng.integers(5, 10)), int(rng.integers(5, 10)), int(rng.integers(2, 4))
        x, kernel = rng.normal(size=(h, w)), rng.normal(size=(k, k + 1))
        cases.append((f"a random {h}x{w} input", (x, kernel, int(rng.integers(1, 3)), int(rng.integers(0, 2)))))
    return cases


_register(Exercise(
    "conv2d", "00_cnn_arithmetic", points=3, cases=_conv2d_cases,
    expected=lambda x, kernel, s, p: conv.conv2d(x, kernel, s, p),
    hint="y[i, j] = sum(x_pad[i*S : i*S + K, j*S : j*S + K] * kernel)",
    mistakes={
        "deep learning's 'convolution' does not flip the kernel (that would be the mathematical convolution)":
            lambda x, kernel, s, p: conv.conv2d(x, np.asarray(kernel)[::-1, ::-1], s, p),
        "pad the input with `padding` zeros on every side before sliding the kernel":
            lambda x, kernel, s, p: conv.conv2d(x, kernel, s, 0),
        "the kernel moves `stride` pixels at a time":
            lambda x, kernel, s, p: conv.conv2d(x, kernel, 1, p),
    },
))


def _receptive_field_cases(seed):
    """answer(kernels, strides) -> [R_1, ..., R_L] with R_1 = K_1, R_l = R_{l-1} + (K_l − 1) ∏_{i<l} S_i."""
    rng = np.random.default_rng(seed)
    cases = [("a 3x3 conv, a 2x2 stride-2 pool, a 3x3 conv", ([3, 2, 3], [1, 2, 1]))]
    for _ in range(10):
        n = int(rng.integers(2, 7))
        kernels, strides = rng.integers(1, 6, n).tolist(), rng.integers(1, 4, n).tolist()
        cases.append((f"kernels {kernels}, strides {strides}", (kernels, strides)))
    return cases


_register(Exercise(
    "receptive_field", "00_cnn_arithmetic", points=2, cases=_receptive_field_cases, expected=conv.receptive_field,
    hint="R_1 = K_1; R_l = R_{l-1} + (K_l − 1) · S_1 · ... · S_{l-1}",
    mistakes={
        "the product runs over the strides of the layers *before* layer l (i < l), not including S_l":
            lambda ks, ss: [sum((k - 1) * int(np.prod(ss[: i + 1])) for i, k in enumerate(ks[: l + 1])) + 1
                            for l in range(len(ks))],
        "each layer adds (K_l − 1) times the product of the earlier strides, not just (K_l − 1)":
            lambda ks, ss: conv.receptive_field(ks),
    },
))


def _judge_reflective_mode(answer):
    """answer: the np.pad mode name that reproduces the slide's "Reflective Padding" table."""
    ex = lecture.conv_examples()["padding_example"]
    x, p, slide = ex["input"], int(ex["padding"]), ex["padded"]["symmetric"]
    if not isinstance(answer, str) or answer not in ("constant", "edge", "reflect", "symmetric", "wrap"):
        return (f"expected one of np.pad's modes as a string, got {answer!r}",
                "try 'constant', 'edge', 'reflect', 'symmetric' or 'wrap' and compare with the slide's table")
    problem = _disagreement(np.pad(x, p, mode=answer), slide)
    if problem is None:
        return None
    hint = ("look at the first row of the slide's table: is the edge value repeated next to itself?"
            if answer == "reflect" else "compare the border of np.pad(x, 2, mode=...) with the slide's table")
    return f"np.pad(x, 2, mode={answer!r}) is not the slide's table: {problem}", hint


_register(Exercise(
    "reflective_mode", "00_cnn_arithmetic", points=1, cases=lambda seed: [("the slide's table", ())],
    judge_value=_judge_reflective_mode, success="np.pad(x, 2, mode={answer!r}) reproduces the slide's 'reflective padding'",
))


# ---------------------------------------------------------------------------------------------------------------
# notebook 01: Grad-CAM by hand


def _maps_cases(rng, with_acts):
    """The lecture example, then random (K, H, W) and batched (B, K, H, W) cases with H ≠ W ≠ K."""
    ex = lecture.worked_example()
    cases = [("the lecture example", (ex["acts"], ex["grads"]) if with_acts else (ex["grads"],))]
    for shape in [(3, 4, 5), (5, 2, 7), (2, 3, 6, 4), (4, 1, 5, 3)]:
        acts, grads = rng.normal(size=shape), rng.normal(size=shape)
        label = "a random batch " if len(shape) == 4 else "random maps "
        cases.append((label + "x".join(map(str, shape)), (acts, grads) if with_acts else (grads,)))
    return cases


_register(Exercise(
    "gradcam_weights", "01_gradcam_by_hand", points=2,  # answer(grads) -> α_k^c, grads (..., K, H, W)
    cases=lambda seed: _maps_cases(np.random.default_rng(seed), with_acts=False),
    expected=reference.gradcam_weights,
    hint="α_k^c = (1/Z) Σ_i Σ_j ∂y^c/∂A^k_ij: use axis=(-2, -1) so batches work too",
    mistakes={
        "you summed the gradients: Grad-CAM averages them (divide by Z = H·W)":
            lambda g: np.sum(g, axis=(-2, -1)),
        "average over the two spatial axes (the last two), keeping the feature-map axis k":
            lambda g: np.mean(g, axis=-3),
        "check the sign: α is the mean of the gradients themselves (the negated version is the counterfactual)":
            lambda g: -np.mean(g, axis=(-2, -1)),
        "no ReLU here: Grad-CAM averages the raw gradients (the ReLU comes after the weighted sum)":
            lambda g: np.mean(np.maximum(g, 0), axis=(-2, -1)),
    },
))


_register(Exercise(
    "gradcam_map", "01_gradcam_by_hand", points=2,  # answer(weights, acts) -> ReLU(Σ_k w_k A^k)
    cases=lambda seed: [(label, (reference.gradcam_weights(grads), acts))
                        for label, (acts, grads) in _maps_cases(np.random.default_rng(seed), True)],
    expected=lambda w, a: np.maximum(reference.weighted_combination(w, a), 0),
    hint="weight each map, sum over k (axis -3), then max(·, 0): w[..., :, None, None] * acts",
    mistakes={
        "you forgot the ReLU: Grad-CAM keeps only the positive evidence, max(L, 0)":
            lambda w, a: reference.weighted_combination(w, a),
        "ReLU is max(L, 0), not |L|: negative evidence is dropped, not flipped":
            lambda w, a: np.abs(reference.weighted_combination(w, a)),
        "apply the ReLU after the weighted sum, not to each feature map before it":
            lambda w, a: reference.weighted_combination(w, np.maximum(a, 0)),
    },
))


_register(Exercise(
    "counterfactual_weights", "01_gradcam_by_hand", points=1,  # answer(grads) -> (1/Z) Σ_ij −∂y^c/∂A^k_ij
    cases=lambda seed: _maps_cases(np.random.default_rng(seed), with_acts=False),
    expected=reference.counterfactual_weights,
    hint="w_k^c = (1/Z) Σ_ij (−∂y^c/∂A^k_ij)",
    mistakes={
        "negate the gradients: the counterfactual asks what would *lower* y^c":
            lambda g: np.mean(g, axis=(-2, -1)),
        "you summed: average over the Z = H·W pixels, as for Grad-CAM":
            lambda g: -np.sum(g, axis=(-2, -1)),
        "no ReLU on the weights: negate and average, nothing more":
            lambda g: np.maximum(-np.mean(g, axis=(-2, -1)), 0),
    },
))


# ---------------------------------------------------------------------------------------------------------------
# notebook 02: CAM

# The visible example of notebook 02: notebook 01's three 2x2 feature maps with class weights (11, 17, 0.4), the sums
# of that example's gradient maps (Z·α with Z = 4), and a bias of −1.
_CAM_EXAMPLE_WEIGHTS = np.array([11.0, 17.0, 0.4])
_CAM_EXAMPLE_BIAS = -1.0


def _cam_cases(seed):
    """[(label, (acts, class_weights, bias))]: the lecture maps, random maps, and maps shaped like the GAP model's
    last layer (64 non-negative 16x16 maps); batches carry one weight vector and one bias per image."""
    rng = np.random.default_rng(seed)
    cases = [("the 2x2 example (notebook 01's maps, weights 11, 17, 0.4)",
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


_register(Exercise(
    "cam_class_score", "02_cam", points=1,  # answer(acts, class_weights, bias) -> Y^c, acts (..., K, H, W)
    cases=_cam_score_cases, expected=_cam_score,
    hint="Y^c = Σ_k w_k^c · mean_ij(A^k_ij) + b^c: average each map over axis=(-2, -1), weight, sum over k, add b",
    mistakes={
        "you left out the bias b^c of the linear layer":
            lambda a, w, b: _cam_score(a, w, 0.0),
        "global average pooling averages the Z = H·W pixels of each map; you summed them":
            lambda a, w, b: np.einsum("...k,...k->...", w, np.sum(a, axis=(-2, -1))) + b,
        "add up the weighted features over k (Σ_k), don't average them":
            lambda a, w, b: np.mean(np.asarray(w) * reference.gap(a), axis=-1) + b,
        "Y^c is the class score (the logit), before the sigmoid":
            lambda a, w, b: 1.0 / (1.0 + np.exp(-_cam_score(a, w, b))),
    },
))


_register(Exercise(
    "cam_map", "02_cam", points=2,  # answer(acts, class_weights) -> M_c = Σ_k w_k^c A^k, no ReLU
    cases=lambda seed: [(label, (acts, weights)) for label, (acts, weights, _) in _cam_cases(seed)],
    expected=reference.cam,
    hint="M_c = Σ_k w_k^c A^k: class_weights[..., :, None, None] * acts, summed over k (axis -3)",
    mistakes={
        "CAM has no ReLU (Zhou et al., section 2): keep the negative values of the weighted sum":
            lambda a, w: np.maximum(reference.cam(a, w), 0.0),
        "you divided by Z = H·W: that is Grad-CAM's scale; CAM uses the classifier's weights w_k^c as they are":
            lambda a, w: reference.cam(a, w) / (np.shape(a)[-1] * np.shape(a)[-2]),
        "add up the weighted maps over k (Σ_k), don't average them":
            lambda a, w: reference.cam(a, w) / np.shape(a)[-3],
        "return the raw weighted sum; scaling to [0, 1] is for display and comes later":
            lambda a, w: reference.normalize(reference.cam(a, w)),
    },
))


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


_register(Exercise(
    "cam_weights_from_grads", "02_cam", points=2,  # answer(grads) -> Σ_ij ∂Y^c/∂A^k_ij, (..., K, H, W) -> (..., K)
    cases=_cam_grads_cases, expected=reference.cam_weights_from_gradients,
    hint="w_k^c = Σ_i Σ_j ∂Y^c/∂A^k_ij: sum over axis=(-2, -1), one weight per map k",
    mistakes={
        "you averaged: that is Grad-CAM's α_k^c = w_k^c / Z; CAM's weight is the sum over the Z pixels":
            lambda g: np.mean(g, axis=(-2, -1)),
        "sum over the two spatial axes (i, j), axis=(-2, -1), keeping one weight per feature map k":
            lambda g: np.sum(g, axis=-3),
        "you multiplied by Z once too often: each pixel carries w_k^c / Z, so the plain sum is w_k^c":
            lambda g: np.sum(g, axis=(-2, -1)) * np.shape(g)[-1] * np.shape(g)[-2],
        "no ReLU here: sum the raw gradients, negative ones included":
            lambda g: np.sum(np.maximum(g, 0.0), axis=(-2, -1)),
    },
))


# ---------------------------------------------------------------------------------------------------------------
# notebook 03: Grad-CAM on trained networks

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


def _combine(weights, acts):
    """ReLU(Σ_k w_k A^k) for NumPy weights (B, K) and acts (B, K, h, w)."""
    return np.maximum(reference.weighted_combination(weights, acts), 0.0)


_register(Exercise(
    "gradcam_weights_torch", "03_gradcam", points=2,  # answer(grads) -> α, torch (B, K, h, w) -> (B, K)
    cases=lambda seed: [(label, (grads,)) for label, (_, grads) in _torch_maps_cases(seed)],
    expected=lambda g: reference.gradcam_weights(_np(g)),
    hint="α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij: grads.mean(dim=(-2, -1)), in the tensor's own dtype (float64 here)",
    mistakes={
        "you summed the gradients: Grad-CAM averages them (divide by Z = h·w)":
            lambda g: _np(g).sum(axis=(-2, -1)),
        "keep the batch axis: every image has its own weights, shape (B, K); average over dims (-2, -1) only":
            lambda g: _np(g).mean(axis=(0, -2, -1)),
        "average over the two spatial axes (h, w), dim=(-2, -1), not over the feature maps (dim 1)":
            lambda g: _np(g).mean(axis=1),
        "check the sign: α is the mean of the gradients themselves (the negated version is the counterfactual)":
            lambda g: -_np(g).mean(axis=(-2, -1)),
        "no ReLU here: Grad-CAM averages the raw gradients, negative ones included":
            lambda g: np.maximum(_np(g), 0.0).mean(axis=(-2, -1)),
    },
))


_register(Exercise(
    "gradcam_torch", "03_gradcam", points=2,  # answer(acts, grads) -> ReLU(Σ_k α_k A^k), (B, K, h, w) -> (B, h, w)
    cases=_torch_maps_cases,
    expected=lambda a, g: reference.gradcam(_np(a), _np(g)),
    hint="weights = grads.mean(dim=(-2, -1)); then torch.relu((weights[:, :, None, None] * acts).sum(dim=1))",
    mistakes={
        "you forgot the ReLU: Grad-CAM keeps only the positive evidence, torch.relu(L)":
            lambda a, g: reference.weighted_combination(reference.gradcam_weights(_np(g)), _np(a)),
        "the weights are the *means* of the gradient maps: your map is Z = h·w times too large":
            lambda a, g: _combine(_np(g).sum(axis=(-2, -1)), _np(a)),
        "apply the ReLU once, to the sum over k, not to each weighted map α_k A^k":
            lambda a, g: np.maximum(reference.gradcam_weights(_np(g))[..., None, None] * _np(a), 0.0).sum(axis=-3),
        "Grad-CAM weights each whole map by one number, the mean of its gradient map, "
        "not each pixel by its own gradient (that would be ReLU(Σ_k G^k ⊙ A^k))":
            lambda a, g: np.maximum((_np(g) * _np(a)).sum(axis=-3), 0.0),
        "keep the batch axis: each image's map uses that image's own weights, shape (B, K)":
            lambda a, g: _combine(np.broadcast_to(_np(g).mean(axis=(0, -2, -1)), _np(g).shape[:2]), _np(a)),
        "weight the feature maps A^k, not the gradient maps":
            lambda a, g: _combine(reference.gradcam_weights(_np(g)), _np(g)),
    },
))


_register(Exercise(
    "counterfactual_torch", "03_gradcam", points=1,  # answer(acts, grads) -> ReLU(Σ_k w_k A^k), w = mean(−grads)
    cases=_torch_maps_cases,
    expected=lambda a, g: reference.counterfactual(_np(a), _np(g)),
    hint="weights = (-grads).mean(dim=(-2, -1)); then torch.relu((weights[:, :, None, None] * acts).sum(dim=1))",
    mistakes={
        "negate the gradients: the counterfactual map shows what would *lower* y^c":
            lambda a, g: reference.gradcam(_np(a), _np(g)),
        "negate before the ReLU: ReLU(−L), not −ReLU(L) (a map of evidence is never negative)":
            lambda a, g: -reference.gradcam(_np(a), _np(g)),
        "the weights are the *means* of the negated gradient maps: your map is Z = h·w times too large":
            lambda a, g: _combine(-_np(g).sum(axis=(-2, -1)), _np(a)),
        "no ReLU on the gradients: negate and average them all; the only ReLU is on the final map":
            lambda a, g: _combine(np.maximum(-_np(g), 0.0).mean(axis=(-2, -1)), _np(a)),
    },
))


# ---------------------------------------------------------------------------------------------------------------
# notebook 04: pixel-level explanations (saliency, guided backprop, occlusion)


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


_register(Exercise(
    "saliency_from_gradient", "04_pixel_level", points=1, cases=_saliency_from_gradient_cases,
    expected=lambda g: np.max(np.abs(g), axis=1),
    hint="M = |grads| first, then the max over the colour-channel axis 1 (of B, C, H, W): np.abs(grads).max(axis=1)",
    mistakes={
        "take the absolute value: a large negative gradient is as salient as a large positive one":
            lambda g: np.max(g, axis=1),
        "the absolute value comes before the max: max_c |w_c|, not |max_c w_c|":
            lambda g: np.abs(np.max(g, axis=1)),
        "merge the colour channels with the max, not the sum":
            lambda g: np.sum(np.abs(g), axis=1),
        "merge the colour channels with the max, not the mean":
            lambda g: np.mean(np.abs(g), axis=1),
        "merge the colour channels with the max, not the Euclidean norm":
            lambda g: np.sqrt(np.sum(np.square(g), axis=1)),
    },
))


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


_register(Exercise(
    "guided_relu_backward", "04_pixel_level", points=2, cases=_guided_relu_cases,
    expected=lambda x, g: np.where(np.asarray(x) > 0, np.maximum(g, 0.0), 0.0),
    hint="two masks multiply the incoming gradient: the forward mask [x > 0] and the sign mask [grad_out > 0]",
    mistakes={
        "that is plain backprop, [x > 0] · R: guided backprop also drops the negative gradients, max(R, 0)":
            lambda x, g: np.where(np.asarray(x) > 0, g, 0.0),
        "that is the deconvnet rule, max(R, 0): guided backprop also keeps the forward mask [x > 0]":
            lambda x, g: np.maximum(g, 0.0),
        "the mask is strict, x > 0: a ReLU whose input is exactly 0 passes nothing":
            lambda x, g: np.where(np.asarray(x) >= 0, np.maximum(g, 0.0), 0.0),
        "multiply by the mask [x > 0] (0 or 1), not by the activation max(x, 0) itself":
            lambda x, g: np.maximum(x, 0.0) * np.maximum(g, 0.0),
        "keep the positive gradients, max(R, 0), do not flip the negative ones with |R|":
            lambda x, g: np.where(np.asarray(x) > 0, np.abs(g), 0.0),
    },
))


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


_register(Exercise(
    "occlusion_drop", "04_pixel_level", points=2, cases=_occlusion_drop_cases,
    expected=lambda w, image, fill: np.sum(w * (image - fill), axis=0),
    hint="hiding pixel (i, j) changes channel c from I_cij to fill, so S drops by Σ_c w_cij (I_cij − fill)",
    mistakes={
        "the drop is S(original) − S(occluded), not the other way round":
            lambda w, image, fill: np.sum(w * (fill - image), axis=0),
        "the hidden pixel becomes `fill`, not 0: the drop is w · (I − fill)":
            lambda w, image, fill: np.sum(w * image, axis=0),
        "add the drops of the colour channels (the patch hides all of them), don't take their max":
            lambda w, image, fill: np.max(w * (image - fill), axis=0),
        "occlusion keeps the sign: a negative drop means hiding the pixel raises the score":
            lambda w, image, fill: np.abs(np.sum(w * (image - fill), axis=0)),
        "the drop depends on the image, not only on the weights (that would be the gradient)":
            lambda w, image, fill: np.sum(w, axis=0),
    },
))


# ---------------------------------------------------------------------------------------------------------------
# notebook 05: Grad-CAM++, the homework derivation

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


_register(Exercise(
    "gradcampp_alphas_general", "05_gradcampp", points=2,  # answer(acts, d2, d3) -> α, all (..., K, H, W)
    cases=_pp_general_cases, expected=reference.gradcampp_alphas_from_derivatives,
    hint="α = d2 / (2·d2 + Σ_ab A_ab · d3), the sum over each map's own pixels (axis=(-2, -1), keepdims=True); "
         "where the denominator is 0, α is 0 (no NaN)",
    mistakes={
        "solving ∂²Y = 2α ∂²Y + ΣA α ∂³Y for α gives a 2 in front of d2 in the denominator":
            lambda a, d2, d3: _pp_general(a, d2, d3, factor=1.0),
        "the sum runs over every pixel (a, b) of the same map: Σ_ab A^k_ab, not the pixel's own A^k_ij":
            lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=None),
        "sum over the two spatial axes of each map (axis=(-2, -1)), not over all the maps together":
            lambda a, d2, d3: _pp_general(a, d2, d3, sum_axes=(-3, -2, -1)),
        "no epsilon: put α = 0 exactly where the denominator is 0 and divide exactly elsewhere":
            lambda a, d2, d3: _pp_general(a, d2, d3, eps=1e-6),
    },
))


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


_register(Exercise(
    "exp_score_derivatives", "05_gradcampp", points=2,  # answer(grads, score) -> (d2, d3), each like grads
    cases=_pp_exp_cases, expected=_pp_exp,
    hint="with Y = exp(S) and ∂²S/∂A² = 0: ∂²Y/∂A² = exp(S)·g², ∂³Y/∂A³ = exp(S)·g³; return (d2, d3)",
    mistakes={
        "each derivative of exp(S) keeps the factor exp(S): d2 = exp(S)·g², d3 = exp(S)·g³":
            lambda g, s: _pp_exp(g, s, factor=lambda s: 1.0),
        "the factor is exp(S), not S: the derivative of exp is exp":
            lambda g, s: _pp_exp(g, s, factor=lambda s: s),
        "count the derivatives: the n-th derivative of exp(S) along A_ij is exp(S)·gⁿ, so g² and g³":
            lambda g, s: _pp_exp(g, s, powers=(1, 2)),
        "return them in the order (second derivative, third derivative)":
            lambda g, s: _pp_exp(g, s, powers=(3, 2)),
    },
))


def _pp_closed(acts, grads, eps=0.0, factor=2.0, sum_axes=(-2, -1)):
    g = np.asarray(grads, dtype=np.float64)
    return _pp_general(acts, g**2, g**3, eps=eps, factor=factor, sum_axes=sum_axes)


def _pp_cancelled(acts, grads):
    """1 / (2 + ΣA·g): the closed form after cancelling g², wrong (1/2 instead of 0) where g = 0."""
    total = np.asarray(acts, dtype=np.float64).sum(axis=(-2, -1), keepdims=True)
    denominator = 2.0 + total * np.asarray(grads, dtype=np.float64)
    return np.divide(1.0, denominator, out=np.zeros_like(denominator), where=denominator != 0)


_register(Exercise(
    "gradcampp_alpha_closed_form", "05_gradcampp", points=3,  # answer(acts, grads) -> α, (..., K, H, W)
    cases=_pp_maps_cases, expected=reference.gradcampp_alphas,
    hint="α = g² / (2g² + Σ_ab A_ab · g³) with Σ_ab over each map's own pixels (axis=(-2, -1), keepdims=True), "
         "and α = 0 where the denominator is 0 (no NaN)",
    mistakes={
        "no epsilon in the denominator: with gradients of ~1e-3, g² is ~1e-6 and an added 1e-6 changes α a lot":
            lambda a, g: _pp_closed(a, g, eps=1e-6),
        "cancelling g² is fine only where g ≠ 0: where the gradient is exactly 0 (a dead unit), α must be 0":
            _pp_cancelled,
        "the denominator has 2·g², not g²":
            lambda a, g: _pp_closed(a, g, factor=1.0),
        "the sum runs over every pixel (a, b) of the same map: Σ_ab A^k_ab, not the pixel's own A^k_ij":
            lambda a, g: _pp_closed(a, g, sum_axes=None),
        "sum over the two spatial axes of each map (axis=(-2, -1)), not over all the maps together":
            lambda a, g: _pp_closed(a, g, sum_axes=(-3, -2, -1)),
    },
))


def _pp_weights_cases(seed):
    """[(label, (alphas, grads))]: the closed-form α of each case of `_pp_maps_cases` with its gradients."""
    return [(label, (reference.gradcampp_alphas(acts, grads), grads)) for label, (acts, grads) in _pp_maps_cases(seed)]


_register(Exercise(
    "gradcampp_weights_from_alphas", "05_gradcampp", points=2,  # answer(alphas, grads) -> w, (..., K, H, W) -> (..., K)
    cases=_pp_weights_cases,
    expected=lambda alphas, grads: (np.asarray(alphas) * np.maximum(grads, 0.0)).sum(axis=(-2, -1)),
    hint="w_k^c = Σ_ij α^kc_ij · ReLU(g^k_ij): multiply, then sum over axis=(-2, -1)",
    mistakes={
        "only the positive gradients count: ReLU(g) = max(g, 0) before multiplying by α":
            lambda al, g: (np.asarray(al) * np.asarray(g)).sum(axis=(-2, -1)),
        "α already does the weighting: sum the products over the pixels, do not average them":
            lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).mean(axis=(-2, -1)),
        "sum over the two spatial axes (the last two), keeping the feature-map axis k":
            lambda al, g: (np.asarray(al) * np.maximum(g, 0.0)).sum(axis=-3),
        "use the per-pixel weights α: w_k is Σ_ij α_ij ReLU(g_ij), not Grad-CAM's mean of the gradients":
            lambda al, g: reference.gradcam_weights(g),
    },
))
