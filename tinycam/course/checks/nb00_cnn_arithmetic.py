"""Notebook 00, CNN arithmetic: output sizes, a strided padded convolution, receptive fields, padding modes."""

import numpy as np

from tinycam import conv
from tinycam.course import lecture
from tinycam.course.checks.framework import Exercise, Mistake, disagreement


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


OUTPUT_SIZE = Exercise(
    "output_size", "00_cnn_arithmetic", points=2, cases=_output_size_cases, expected=conv.output_size,
    hint="W_o = ⌊(W_i + 2P − K_eff) / S⌋ + 1 with K_eff = K + (K − 1)(d − 1)",
    mistakes=(
        Mistake("frameworks round down: an incomplete last window is dropped, so the division gives a whole number",
                lambda w, k, s, p, d: (w + 2 * p - k - (k - 1) * (d - 1)) / s + 1),
        Mistake("a dilated kernel spans K + (K − 1)(d − 1) pixels, not K",
                lambda w, k, s, p, d: (w + 2 * p - k) // s + 1),
        Mistake("padding is added on both sides: 2P",
                lambda w, k, s, p, d: (w + p - k - (k - 1) * (d - 1)) // s + 1),
    ),
)


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


CONV2D = Exercise(
    "conv2d", "00_cnn_arithmetic", points=3, cases=_conv2d_cases,
    expected=lambda x, kernel, s, p: conv.conv2d(x, kernel, s, p),
    hint="each output value is the sum of the kernel times the window of the padded input it covers, and the "
         "window moves by the stride along the rows and along the columns",
    mistakes=(
        Mistake("deep learning's 'convolution' does not flip the kernel (that would be the mathematical convolution)",
                lambda x, kernel, s, p: conv.conv2d(x, np.asarray(kernel)[::-1, ::-1], s, p)),
        Mistake("pad the input with `padding` zeros on every side before sliding the kernel",
                lambda x, kernel, s, p: conv.conv2d(x, kernel, s, 0)),
        Mistake("the kernel moves `stride` pixels at a time",
                lambda x, kernel, s, p: conv.conv2d(x, kernel, 1, p)),
        Mistake("your output is transposed: its rows must follow the input's rows (the window moving down) and its "
                "columns the input's columns", lambda x, kernel, s, p: conv.conv2d(x, kernel, s, p).T),
    ),
)


def _receptive_field_cases(seed):
    """answer(kernels, strides) -> [R_1, ..., R_L] with R_1 = K_1, R_l = R_{l-1} + (K_l − 1) ∏_{i<l} S_i."""
    rng = np.random.default_rng(seed)
    cases = [("a 3x3 conv, a 2x2 stride-2 pool, a 3x3 conv", ([3, 2, 3], [1, 2, 1]))]
    for _ in range(10):
        n = int(rng.integers(2, 7))
        kernels, strides = rng.integers(1, 6, n).tolist(), rng.integers(1, 4, n).tolist()
        cases.append((f"kernels {kernels}, strides {strides}", (kernels, strides)))
    return cases


RECEPTIVE_FIELD = Exercise(
    "receptive_field", "00_cnn_arithmetic", points=2, cases=_receptive_field_cases, expected=conv.receptive_field,
    hint="R_1 = K_1; R_l = R_{l-1} + (K_l − 1) · S_1 · ... · S_{l-1}",
    mistakes=(
        Mistake("the product runs over the strides of the layers *before* layer l (i < l), not including S_l",
                lambda ks, ss: [sum((k - 1) * int(np.prod(ss[: i + 1])) for i, k in enumerate(ks[: layer + 1])) + 1
                                for layer in range(len(ks))]),
        Mistake("each layer adds (K_l − 1) times the product of the earlier strides, not just (K_l − 1)",
                lambda ks, ss: conv.receptive_field(ks)),
    ),
)


def _judge_reflective_mode(answer):
    """answer: the np.pad mode name that reproduces the slide's "Reflective Padding" table."""
    ex = lecture.conv_examples()["padding_example"]
    x, p, slide = ex["input"], int(ex["padding"]), ex["padded"]["symmetric"]
    if not isinstance(answer, str) or answer not in ("constant", "edge", "reflect", "symmetric", "wrap"):
        return (f"expected one of np.pad's modes as a string, got {answer!r}",
                "try 'constant', 'edge', 'reflect', 'symmetric' or 'wrap' and compare with the slide's table")
    problem = disagreement(np.pad(x, p, mode=answer), slide)  # type: ignore[call-overload]  # a str, checked above
    if problem is None:
        return None
    return (f"np.pad(x, 2, mode={answer!r}) is not the slide's table: {problem}",
            "compare the border of each padding mode with the slide's table")


REFLECTIVE_MODE = Exercise(
    "reflective_mode", "00_cnn_arithmetic", points=1, cases=lambda seed: [("the slide's table", ())],
    judge_value=_judge_reflective_mode,
    success="np.pad(x, 2, mode={answer!r}) reproduces the slide's 'reflective padding'",
    mistakes=(
        Mistake("look at the first row of the slide's table: is the edge value repeated next to itself?",
                lambda: "reflect"),
    ),
)


EXERCISES = (OUTPUT_SIZE, CONV2D, RECEPTIVE_FIELD, REFLECTIVE_MODE)
