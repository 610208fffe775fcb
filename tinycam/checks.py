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
`EXERCISES` lists them all; the grader (`tinycam.grading`) draws hidden cases and judges answers with them.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from tinycam import conv, lecture, reference

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
            got = answer if self.is_value else _call(self.name, answer, args)
            verdict = self.judge(label, args, got)
            if verdict is not None:
                _fail(self.name, *verdict)
        print(f"✓ {self.name}: " + (self.success.format(answer=answer) if self.is_value else
                                     f"correct on {cases[0][0]} and {len(cases) - 1} more cases"))


EXERCISES: dict = {}


def _register(exercise):
    """Add the exercise to EXERCISES and expose `checks.<name>(answer)` for the notebook's check cell."""
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
