"""The checks of notebook 04 (pixel-level methods) pass right answers and fail planted mistakes with their hint."""

import numpy as np
import pytest

from tinycam.course import checks

from check_harness import check_tests

# exercise -> a correct answer (written differently from the checks' reference where possible)
CORRECT = {
    "saliency_from_gradient": lambda g: np.maximum(np.asarray(g).max(axis=1), -np.asarray(g).min(axis=1)),
    "guided_relu_backward": lambda x, g: (np.asarray(x) > 0) * (np.asarray(g) > 0) * np.asarray(g),
    "occlusion_drop": lambda w, image, fill: np.einsum("chw,chw->hw", w, image) - fill * np.sum(w, axis=0),
}

NOTEBOOK_SALIENCY = [[[1.5, 2.0], [1.0, 3.0]]]
NOTEBOOK_GUIDED = [0.6, 0.0, 0.0, 0.0, 0.0, 2.0]
NOTEBOOK_OCCLUSION = [[-0.5, 0.5, -0.5], [-0.5, 2.0, -0.5], [-0.5, 0.5, -0.5]]


def _hard_coded(value):
    return lambda *args: np.array(value)


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "saliency_from_gradient": [
        (lambda g: np.abs(np.asarray(g)).sum(axis=1) / np.shape(g)[1], "not the mean"),
        (lambda g: np.linalg.norm(g, axis=1), "Euclidean norm"),
        (lambda g: np.max(np.abs(g), axis=0), "colour-channel axis"),  # the batch axis instead
        (lambda g: np.max(np.abs(g), axis=-1), "colour-channel axis"),  # the last axis
        (lambda g: np.abs(np.asarray(g)).max(axis=1).swapaxes(1, 2), "transposed"),
        (_hard_coded(NOTEBOOK_SALIENCY), "colour-channel axis"),
    ],
    "guided_relu_backward": [
        (lambda x, g: (np.asarray(x) > 0) * g, "plain backprop"),
        (lambda x, g: (np.asarray(x) >= 0) * np.maximum(g, 0), "strict"),
        (lambda x, g: (np.asarray(x) > 0) * np.abs(g), "do not flip"),
        (lambda x, g: (np.asarray(g) > 0) * np.maximum(x, 0), "two masks"),  # roles of x and R swapped
        (_hard_coded(NOTEBOOK_GUIDED), "two masks"),
    ],
    "occlusion_drop": [
        (lambda w, image, fill: fill * np.sum(w, axis=0) - np.einsum("chw,chw->hw", w, image), "not the other way"),
        (lambda w, image, fill: np.einsum("chw,chw->hw", w, image), "not 0"),
        (lambda w, image, fill: w * (image - fill), "Σ_c w_cij"),  # channels not summed
        (lambda w, image, fill: np.einsum("chw,chw->wh", w, image - fill), "transposed"),
        (_hard_coded(NOTEBOOK_OCCLUSION), "Σ_c w_cij"),
    ],
}


def test_the_hard_coded_answers_are_the_notebooks_examples():
    # so a hard-coded answer really is "right on the visible example, wrong on the hidden ones"
    for name, value in [("saliency_from_gradient", NOTEBOOK_SALIENCY), ("guided_relu_backward", NOTEBOOK_GUIDED),
                        ("occlusion_drop", NOTEBOOK_OCCLUSION)]:
        exercise = checks.EXERCISES[name]
        _label, args = exercise.cases(0)[0]
        np.testing.assert_allclose(exercise.expected(*args), value, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_cases_are_seeded(name):
    exercise = checks.EXERCISES[name]
    first, again, other = exercise.cases(5), exercise.cases(5), exercise.cases(6)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for (_, x), (_, y) in zip(first, again, strict=True) for a, b in zip(x, y, strict=True))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b))
               for (_, x), (_, y) in zip(first[1:], other[1:], strict=True) for a, b in zip(x, y, strict=True))


def test_a_torch_answer_is_accepted():
    torch = pytest.importorskip("torch")
    checks.saliency_from_gradient(lambda g: torch.as_tensor(g).abs().amax(dim=1))
    checks.guided_relu_backward(lambda x, g: torch.as_tensor(g).clamp(min=0) * (torch.as_tensor(x) > 0))


globals().update(check_tests("04", CORRECT, WRONG))
