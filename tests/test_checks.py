"""Every check given to students passes the right answer and fails on wrong ones, with the right hint."""

import numpy as np
import pytest

from check_harness import check_tests
from tinycam import conv
from tinycam.course import checks, lecture
from tinycam import reference as R

EXAMPLE = lecture.worked_example()

# exercise -> a correct answer (written differently from the reference where possible)
CORRECT = {
    "output_size": lambda w, k, s, p, d: (w + 2 * p - (d * (k - 1) + 1)) // s + 1,
    "conv2d": lambda x, kernel, s, p: conv.conv2d(x, kernel, stride=s, padding=p),
    "receptive_field": lambda ks, ss: [1 + sum((k - 1) * int(np.prod(ss[:i])) for i, k in enumerate(ks[: l + 1]))
                                       for l in range(len(ks))],
    "reflective_mode": "symmetric",
    "gradcam_weights": lambda g: np.asarray(g).sum(axis=(-2, -1)) / (np.shape(g)[-1] * np.shape(g)[-2]),
    "gradcam_map": lambda w, a: np.maximum((np.asarray(w)[..., :, None, None] * a).sum(axis=-3), 0),
    "counterfactual_weights": lambda g: np.mean(-np.asarray(g), axis=(-2, -1)),
}


def _conv_loop_flipped(x, kernel, s, p):
    return conv.conv2d(x, np.asarray(kernel)[::-1, ::-1], s, p)


def _hard_coded(value):
    return lambda *args: np.array(value)


# exercise -> [(wrong answer, a fragment of the hint it must get)]
WRONG = {
    "output_size": [
        (lambda w, k, s, p, d: (w + 2 * p - k - (k - 1) * (d - 1)) / s + 1, "//"),
        (lambda w, k, s, p, d: (w + 2 * p - k) // s + 1, "dilated"),
        (lambda w, k, s, p, d: (w + p - k - (k - 1) * (d - 1)) // s + 1, "2P"),
        (lambda w, k, s, p, d: 3, "W_o ="),  # hard-coded slide answer
    ],
    "conv2d": [
        (_conv_loop_flipped, "does not flip"),
        (lambda x, kernel, s, p: conv.conv2d(x, kernel, s, 0), "pad the input"),
        (lambda x, kernel, s, p: conv.conv2d(x, kernel, 1, p), "stride"),
        (lambda x, kernel, s, p: conv.conv2d(x, kernel, s, p).T, "y[i, j]"),  # transposed axes
        (_hard_coded([[-15, 6, 3], [-16, 4, -1], [-21, 5, 3]]), "y[i, j]"),
    ],
    "receptive_field": [
        (lambda ks, ss: conv.receptive_field(ks), "product of the earlier strides"),
        (lambda ks, ss: [1 + sum((k - 1) * int(np.prod(ss[: i + 1])) for i, k in enumerate(ks[: l + 1]))
                         for l in range(len(ks))], "*before* layer l"),
        (lambda ks, ss: conv.receptive_field(ks, ss)[-1], "R_1 = K_1"),  # only the last one
    ],
    "reflective_mode": [("reflect", "repeated"), ("edge", "compare"), ("mirror", "one of np.pad's modes")],
    "gradcam_weights": [
        (lambda g: np.sum(g, axis=(-2, -1)), "summed"),
        (lambda g: np.mean(g, axis=-3), "spatial axes"),
        (lambda g: -np.mean(g, axis=(-2, -1)), "sign"),
        (lambda g: np.mean(np.maximum(g, 0), axis=(-2, -1)), "no ReLU"),
        (lambda g: np.mean(g, axis=(-1, -3)), "α_k^c ="),  # transposed axes
        (_hard_coded([2.75, 4.25, 0.1]), "α_k^c ="),
    ],
    "gradcam_map": [
        (lambda w, a: R.weighted_combination(w, a), "forgot the ReLU"),
        (lambda w, a: np.abs(R.weighted_combination(w, a)), "not |L|"),
        (lambda w, a: R.weighted_combination(w, np.maximum(a, 0)), "after the weighted sum"),
        (lambda w, a: np.maximum(R.weighted_combination(-np.asarray(w), a), 0), "weight each map"),
        (lambda w, a: np.maximum(np.swapaxes(R.weighted_combination(w, a), -1, -2), 0), "weight each map"),
        (_hard_coded([[8.925, 0], [16.125, 2.6]]), "weight each map"),
    ],
    "counterfactual_weights": [
        (lambda g: np.mean(g, axis=(-2, -1)), "negate"),
        (lambda g: -np.sum(g, axis=(-2, -1)), "summed"),
        (lambda g: np.maximum(-np.mean(g, axis=(-2, -1)), 0), "no ReLU"),
        (_hard_coded([-2.75, -4.25, -0.1]), "w_k^c ="),
    ],
}


def test_every_exercise_is_shown_to_fail_on_wrong_answers_somewhere():
    # each notebook's exercises are tested in tests/test_checks*.py with a WRONG table of planted mistakes
    import pathlib

    sources = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_checks*.py"))
    for name in checks.EXERCISES:
        assert f'"{name}": [' in sources, f"no wrong answers are tested for exercise {name!r}"


def test_passing_the_result_instead_of_the_function_is_explained(capsys):
    with pytest.raises(AssertionError):
        checks.gradcam_weights(R.gradcam_weights(EXAMPLE["grads"]))
    assert "pass `gradcam_weights` itself" in capsys.readouterr().out


def test_an_answer_that_crashes_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        checks.gradcam_weights(lambda g: 1 / 0)


def test_exercise_registry():
    for ex in checks.EXERCISES.values():
        assert ex.points > 0 and ex.notebook[:2].isdigit() and callable(ex.check)


def test_an_in_place_answer_cannot_change_what_it_is_judged_against(capsys):
    def in_place_wrong(g):
        g *= -1  # modifies the case's array, then returns the mean of the modified one
        return np.mean(g, axis=(-2, -1))

    with pytest.raises(AssertionError):
        checks.gradcam_weights(in_place_wrong)
    assert "sign" in capsys.readouterr().out


globals().update(check_tests("00", {n: a for n, a in CORRECT.items() if checks.EXERCISES[n].notebook.startswith("00")},
                              {n: w for n, w in WRONG.items() if checks.EXERCISES[n].notebook.startswith("00")}))
globals().update({f"{name}_01": test for name, test in check_tests(
    "01", {n: a for n, a in CORRECT.items() if checks.EXERCISES[n].notebook.startswith("01")},
    {n: w for n, w in WRONG.items() if checks.EXERCISES[n].notebook.startswith("01")}).items()})
