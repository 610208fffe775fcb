"""The checks of notebook 02 (CAM) accept right answers and reject planted mistakes with the right hint."""

import numpy as np
import pytest
import torch

from tinycam import reference as R
from tinycam.course import checks

from check_harness import check_tests


def _class_score_torch(acts, weights, bias):
    """A correct answer written in torch (float64 in, a tensor out): the checks accept tensors on the CPU."""
    acts, weights = torch.as_tensor(acts), torch.as_tensor(weights)
    return (weights * acts.mean(dim=(-2, -1))).sum(dim=-1) + torch.as_tensor(bias, dtype=torch.float64)


# exercise -> a correct answer (written differently from the reference where possible)
CORRECT = {
    "cam_class_score": lambda a, w, b: np.sum(np.asarray(w) * np.asarray(a).sum(axis=(-2, -1)), axis=-1)
    / (np.shape(a)[-1] * np.shape(a)[-2]) + b,
    "cam_map": lambda a, w: np.einsum("...khw,...k->...hw", a, w),
    "cam_weights_from_grads": lambda g: np.asarray(g).mean(axis=(-2, -1)) * (np.shape(g)[-1] * np.shape(g)[-2]),
}

# other correct answers, in other styles
ALSO_CORRECT = [
    ("cam_class_score", _class_score_torch),
    ("cam_class_score", lambda a, w, b: R.gap(R.cam(a, w)) + b),  # the score is the mean of the CAM, plus b
    ("cam_map", lambda a, w: (np.asarray(w)[..., :, None, None] * a).sum(axis=-3)),
    ("cam_map", lambda a, w: torch.einsum("...k,...kij->...ij", torch.as_tensor(w), torch.as_tensor(a))),
    ("cam_weights_from_grads", lambda g: torch.as_tensor(g).sum(dim=(-2, -1))),
]


def _hard_coded(value):
    return lambda *args: np.array(value)


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "cam_class_score": [
        (lambda a, w, b: np.sum(np.asarray(w) * R.gap(a), axis=-1), "left out the bias"),
        (lambda a, w, b: np.sum(np.asarray(w) * np.sum(a, axis=(-2, -1)), axis=-1) + b, "you summed them"),
        (lambda a, w, b: 1 / (1 + np.exp(-(np.sum(np.asarray(w) * R.gap(a), axis=-1) + b))), "before the sigmoid"),
        (lambda a, w, b: np.sum(np.asarray(w) * R.gap(a), axis=-1) - b, "not subtracted"),
        (lambda a, w, b: np.sum(np.asarray(w)[..., None] * R.gap(a)[..., None, :], axis=-1) + b, "Y^c ="),  # outer
        (_hard_coded(24.625), "Y^c ="),  # the visible example's answer
    ],
    "cam_map": [
        (lambda a, w: np.einsum("...khw,...k->...hw", a, w).clip(min=0), "no ReLU"),
        (lambda a, w: np.einsum("...khw,...k->...hw", a, w) / np.shape(a)[-3], "don't average them"),
        (lambda a, w: np.swapaxes(R.cam(a, w), -1, -2), "transposed"),
        (lambda a, w: -np.einsum("...khw,...k->...hw", a, w), "check the sign"),
        (lambda a, w: np.einsum("...khw,...k->...hw", a, np.clip(w, 0, None)), "keep their sign"),
        (lambda a, w: R.cam(np.maximum(a, 0), w), "M_c ="),  # ReLU on the maps
        (_hard_coded([[35.7, -8.1], [64.5, 10.4]]), "M_c ="),  # the visible example's answer
    ],
    "cam_weights_from_grads": [
        (lambda g: torch.as_tensor(g).mean(dim=(-2, -1)), "Grad-CAM's α"),
        (lambda g: -np.sum(g, axis=(-2, -1)), "check the sign"),
        (lambda g: torch.as_tensor(g).sum(dim=(-2, -1)).clamp(min=0), "no ReLU on the weights"),
        (_hard_coded([11.0, 17.0, 0.4]), "w_k^c ="),  # the visible example's answer
    ],
}


def test_the_visible_examples_are_the_ones_the_notebook_shows():
    (_, (acts, weights, bias)), *_ = checks.EXERCISES["cam_class_score"].cases(0)
    assert R.gap(acts) @ weights + bias == pytest.approx(24.625)
    assert np.allclose(R.cam(acts, weights), [[35.7, -8.1], [64.5, 10.4]])
    (_, (grads,)), *_ = checks.EXERCISES["cam_weights_from_grads"].cases(0)
    assert np.allclose(R.cam_weights_from_gradients(grads), [11.0, 17.0, 0.4])
    assert np.allclose(R.cam_weights_from_gradients(grads), 4 * R.gradcam_weights(grads))  # Z = 4


def test_cases_depend_on_the_seed_but_not_the_visible_example():
    for name in CORRECT:
        first, second = checks.EXERCISES[name].cases(0), checks.EXERCISES[name].cases(1)
        assert first[0][0] == second[0][0]
        assert not np.array_equal(first[1][1][0], second[1][1][0])


@pytest.mark.parametrize("name, answer", ALSO_CORRECT)
def test_other_correct_answers_pass(name, answer, capsys):
    checks.EXERCISES[name].check(answer, seed=3)
    assert capsys.readouterr().out.startswith(f"✓ {name}")


def test_the_check_functions_are_exposed_for_the_notebook(capsys):
    checks.cam_map(CORRECT["cam_map"])
    checks.cam_class_score(CORRECT["cam_class_score"])
    checks.cam_weights_from_grads(CORRECT["cam_weights_from_grads"])
    assert capsys.readouterr().out.count("✓") == 3


globals().update(check_tests("02", CORRECT, WRONG))
