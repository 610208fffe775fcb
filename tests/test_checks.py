"""Every check given to students passes the right answer and fails on wrong ones, with the right hint."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tinycam import conv
from tinycam import reference as R
from tinycam.course import checks, lecture
from tinycam.course.checks.framework import registry

from check_harness import check_tests

EXAMPLE = lecture.worked_example()

# exercise -> a correct answer (written differently from the reference where possible)
CORRECT = {
    "output_size": lambda w, k, s, p, d: (w + 2 * p - (d * (k - 1) + 1)) // s + 1,
    "conv2d": lambda x, kernel, s, p: conv.conv2d(x, kernel, stride=s, padding=p),
    "receptive_field": lambda ks, ss: [1 + sum((k - 1) * int(np.prod(ss[:i])) for i, k in enumerate(ks[: layer + 1]))
                                       for layer in range(len(ks))],
    "reflective_mode": "symmetric",
    "gradcam_weights": lambda g: np.asarray(g).sum(axis=(-2, -1)) / (np.shape(g)[-1] * np.shape(g)[-2]),
    "gradcam_map": lambda w, a: np.maximum((np.asarray(w)[..., :, None, None] * a).sum(axis=-3), 0),
    "counterfactual_weights": lambda g: np.mean(-np.asarray(g), axis=(-2, -1)),
}


def _hard_coded(value):
    return lambda *args: np.array(value)


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the exercise's
# known mistakes (those are tested one by one, from the exercise itself, in test_every_known_mistake_gets_its_own_hint)
WRONG = {
    "output_size": [
        (lambda w, k, s, p, d: (w + 2 * p - d * (k - 1) - 1) / s + 1, "//"),
        (lambda w, k, s, p, d: 3, "W_o ="),  # hard-coded slide answer
    ],
    "conv2d": [
        (lambda x, kernel, s, p: conv.conv2d(np.pad(x, p), np.flip(kernel), s, 0), "does not flip"),
        (lambda x, kernel, s, p: conv.conv2d(x, kernel, s, p).T, "y[i, j]"),  # transposed axes
        (_hard_coded([[-15, 6, 3], [-16, 4, -1], [-21, 5, 3]]), "y[i, j]"),
    ],
    "receptive_field": [
        (lambda ks, ss: conv.receptive_field(ks, ss)[-1], "R_1 = K_1"),  # only the last one
    ],
    "reflective_mode": [("edge", "compare"), ("mirror", "one of np.pad's modes")],
    "gradcam_weights": [
        (lambda g: -np.asarray(g).mean(axis=-1).mean(axis=-1), "sign"),
        (lambda g: np.mean(g, axis=(-1, -3)), "α_k^c ="),  # transposed axes
        (_hard_coded([2.75, 4.25, 0.1]), "α_k^c ="),
    ],
    "gradcam_map": [
        (lambda w, a: np.einsum("...k,...kij->...ij", w, a), "forgot the ReLU"),
        (lambda w, a: np.maximum(R.weighted_combination(-np.asarray(w), a), 0), "weight each map"),
        (lambda w, a: np.maximum(np.swapaxes(R.weighted_combination(w, a), -1, -2), 0), "weight each map"),
        (_hard_coded([[8.925, 0], [16.125, 2.6]]), "weight each map"),
    ],
    "counterfactual_weights": [
        (lambda g: np.asarray(g).mean(axis=-1).mean(axis=-1), "negate"),
        (_hard_coded([-2.75, -4.25, -0.1]), "w_k^c ="),
    ],
}


def test_every_exercise_is_shown_to_fail_on_wrong_answers_somewhere():
    # each notebook's exercises are tested in tests/test_checks*.py with a WRONG table of planted mistakes
    import pathlib

    sources = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_checks*.py"))
    for name in checks.EXERCISES:
        assert f'"{name}": [' in sources, f"no wrong answers are tested for exercise {name!r}"


KNOWN_MISTAKES = [(name, index) for name, exercise in checks.EXERCISES.items()
                  for index in range(len(exercise.mistakes))]


@pytest.mark.parametrize("name, index", KNOWN_MISTAKES, ids=[f"{name}-{index}" for name, index in KNOWN_MISTAKES])
def test_every_known_mistake_gets_its_own_hint(name, index, capsys):
    exercise = checks.EXERCISES[name]
    mistake = exercise.mistakes[index]
    if exercise.is_value:
        (_, args), = exercise.cases(0)
        answer = mistake.wrong(*args)
    else:
        def answer(*args):
            return mistake.wrong(*args)

    with pytest.raises(AssertionError):
        exercise.check(answer)
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}"), out
    earlier = [i for i, m in enumerate(exercise.mistakes[:index]) if out.endswith(f"\n  hint: {m.hint}\n")]
    assert not earlier, f"mistake {index} of {name!r} is shadowed by mistake {earlier[0]}: {out}"
    assert out.endswith(f"\n  hint: {mistake.hint}\n"), out


def test_the_checks_of_the_numpy_notebooks_do_not_import_torch():
    script = ("import sys\n"
              "from tinycam.course import checks\n"
              "checks.output_size(lambda w, k, s, p, d: (w + 2 * p - d * (k - 1) - 1) // s + 1)\n"
              "checks.gradcam_weights(lambda grads: grads.mean(axis=(-2, -1)))\n"
              "assert 'torch' not in sys.modules, 'importing or running the checks imported torch'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("✓") == 2, run.stdout


def test_the_checks_are_module_attributes_named_after_their_exercise():
    assert set(checks.EXERCISES) <= set(dir(checks)) and {"EXERCISES", "Exercise", "Mistake"} <= set(dir(checks))
    check = checks.gradcam_weights
    assert check.__name__ == "gradcam_weights" and "01_gradcam_by_hand" in check.__doc__
    with pytest.raises(AttributeError, match="gradcam_weights, gradcam_map"):
        checks.gradcam_wieghts  # noqa: B018 (a typo in a check cell)


def test_an_exercise_name_used_twice_is_rejected():
    exercise = checks.EXERCISES["gradcam_weights"]
    with pytest.raises(ValueError, match="'gradcam_weights' .* already taken"):
        registry([exercise, exercise])


def test_passing_the_result_instead_of_the_function_is_explained(capsys):
    with pytest.raises(AssertionError):
        checks.gradcam_weights(R.gradcam_weights(EXAMPLE["grads"]))
    assert "pass `gradcam_weights` itself" in capsys.readouterr().out


def test_an_answer_that_crashes_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        checks.gradcam_weights(lambda g: 1 / 0)


def test_exercise_registry():
    for ex in checks.EXERCISES.values():
        assert ex.points > 0 and ex.notebook[:2].isdigit()


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
