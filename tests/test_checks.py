"""Every check given to students passes the right answer and fails on wrong ones, with the right hint."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tinycam import conv
from tinycam import reference as R
from tinycam.course import checks, lecture
from tinycam.course.checks import framework
from tinycam.course.checks.framework import registry

from check_harness import check_tests, feedback, in_float32

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
        (lambda w, k, s, p, d: (w + 2 * p - d * (k - 1) - 1) / s + 1, "round down"),
        (lambda w, k, s, p, d: 3, "W_o ="),  # hard-coded slide answer
    ],
    "conv2d": [
        (lambda x, kernel, s, p: conv.conv2d(np.pad(x, p), np.flip(kernel), s, 0), "does not flip"),
        (lambda x, kernel, s, p: np.swapaxes(conv.conv2d(x, kernel, s, p), 0, 1), "transposed"),
        (lambda x, kernel, s, p: conv.conv2d(x, np.asarray(kernel).T, s, p), "each output value"),  # kernel transposed
        (_hard_coded([[-15, 6, 3], [-16, 4, -1], [-21, 5, 3]]), "each output value"),
    ],
    "receptive_field": [
        (lambda ks, ss: conv.receptive_field(ks, ss)[-1], "R_1 = K_1"),  # only the last one
    ],
    "reflective_mode": [("edge", "compare"), ("mirror", "one of np.pad's modes")],
    "gradcam_weights": [
        (lambda g: -np.asarray(g).mean(axis=-1).mean(axis=-1), "sign"),
        (lambda g: np.mean(g, axis=(-1, -3)), "α_k^c ="),  # transposed axes
        (lambda g: np.clip(np.asarray(g).mean(axis=(-2, -1)), 0, None), "no ReLU on the weights"),
        (_hard_coded([2.75, 4.25, 0.1]), "α_k^c ="),
    ],
    "gradcam_map": [
        (lambda w, a: np.einsum("...k,...kij->...ij", w, a), "forgot the ReLU"),
        (lambda w, a: np.maximum(R.weighted_combination(-np.asarray(w), a), 0), "check the sign"),
        (lambda w, a: np.maximum(np.swapaxes(R.weighted_combination(w, a), -1, -2), 0), "transposed"),
        (lambda w, a: np.maximum(R.weighted_combination(np.abs(w), a), 0), "weight each feature map"),  # |w|
        (lambda w, a: np.maximum(R.weighted_combination(np.clip(w, 0, None), a), 0), "keep their sign"),
        (lambda w, a: R.normalize(np.maximum(R.weighted_combination(w, a), 0)), "for display"),
        (_hard_coded([[8.925, 0], [16.125, 2.6]]), "weight each feature map"),
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


def _mistake_answers(exercise, mistake):
    """The answers that make `mistake`: one, or one per example parameter of a mistake with a free parameter."""
    if exercise.is_value:
        (_, args), = exercise.cases(0)
        return [mistake.wrong(*args)]
    if mistake.fit is None:
        return [lambda *args: mistake.wrong(*args)]
    assert mistake.examples, "a mistake with a free parameter is shown with example parameters"
    return [lambda *args, p=parameter: mistake.wrong(*args, p) for parameter in mistake.examples]


@pytest.mark.parametrize("name, index", KNOWN_MISTAKES, ids=[f"{name}-{index}" for name, index in KNOWN_MISTAKES])
def test_every_known_mistake_gets_its_own_hint(name, index):
    exercise = checks.EXERCISES[name]
    mistake = exercise.mistakes[index]
    for answer in _mistake_answers(exercise, mistake):
        _, hint = feedback(name, answer)
        earlier = [i for i, m in enumerate(exercise.mistakes[:index]) if hint == m.hint]
        assert not earlier, f"mistake {index} of {name!r} is shadowed by mistake {earlier[0]}: {hint}"
        assert hint == mistake.hint


@pytest.mark.parametrize("name, index", KNOWN_MISTAKES, ids=[f"{name}-{index}" for name, index in KNOWN_MISTAKES])
def test_no_known_mistake_fires_on_the_right_answer(name, index):
    exercise = checks.EXERCISES[name]
    if exercise.is_value:
        return
    mistake = exercise.mistakes[index]
    cases = exercise.cases(0)
    fired = [mistake.reproduced_by(exercise.expected(*args), args) for _, args in cases]
    if mistake.fit is None:  # a fixed wrong answer may coincide with the right one on some cases, not on all
        assert not all(fired)
    else:  # a fitted one never explains the right answer
        assert not any(fired)


@pytest.mark.parametrize("name", [n for n, ex in checks.EXERCISES.items() if not ex.is_value])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_expected_function_passes_its_own_check(name, seed, capsys):
    # the solutions' answers: each exercise's expected function, checked as a student's answer would be
    checks.EXERCISES[name].check(checks.EXERCISES[name].expected, seed=seed)
    assert capsys.readouterr().out.startswith(f"✓ {name}: correct on ")


def test_no_hint_shows_code():
    # hints are conceptual: words and the lecture's notation, no NumPy or torch calls, axes arguments or slicing
    code = re.compile(r"axis=|dim=|np\.|torch\.|\[\.\.\.|\bNone\b|//|\.(mean|sum|max|relu)\(")
    for name, exercise in checks.EXERCISES.items():
        for hint in [exercise.hint, *(m.hint for m in exercise.mistakes)]:
            assert not code.search(hint), f"{name}: {hint}"
            assert "\n" not in hint


def test_every_known_mistake_computed_in_float32_still_gets_its_own_hint():
    # judged at float32 precision: a float32 answer that is wrong anyway is recognised by its mistake
    for name, index in [("gradcam_weights", 0), ("cam_map", 0), ("gradcam_torch", 0), ("saliency_from_gradient", 0),
                        ("gradcampp_weights_from_alphas", 0), ("gradcampp_alpha_closed_form", 2)]:
        mistake = checks.EXERCISES[name].mistakes[index]
        assert in_float32(name, lambda *args, m=mistake: m.wrong(*args))[1] == mistake.hint, name


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


def test_passing_the_result_instead_of_the_function_is_explained():
    _, hint = feedback("gradcam_weights", R.gradcam_weights(EXAMPLE["grads"]))
    assert "pass `gradcam_weights` itself" in hint


def test_an_answer_that_raises_gets_a_line_naming_the_case_and_the_error(tmp_path):
    (tmp_path / "answer_that_raises.py").write_text("def gradcam_weights(grads):\n"
                                                    "    total = grads.sum()\n"
                                                    "    return total / 0 + {}['missing key']\n")
    sys.path.insert(0, str(tmp_path))
    try:
        from answer_that_raises import gradcam_weights
    finally:
        sys.path.remove(str(tmp_path))
    with np.errstate(divide="ignore"):
        problem, hint = feedback("gradcam_weights", gradcam_weights)
    assert problem == ("raised KeyError on the lecture example: 'missing key' "
                       "(at `return total / 0 + {}['missing key']`)"), problem
    assert "your own code" in hint
    with pytest.raises(AssertionError) as failure, np.errstate(divide="ignore"):
        checks.gradcam_weights(gradcam_weights)
    assert isinstance(failure.value.__cause__, KeyError)  # kept for %debug and plain Python's traceback


def test_a_long_error_message_is_cut_at_a_word_boundary():
    def answer(grads):
        raise ValueError("operands could not be broadcast together " * 10)

    problem, _ = feedback("gradcam_weights", answer)
    assert problem.startswith("raised ValueError on the lecture example: operands could not be broadcast together")
    head, _, where = problem.partition(" … (at `")
    assert head.split()[-1] in "operands could not be broadcast together".split(), problem  # a whole word
    assert where.startswith("raise ValueError(") and len(problem) < 250, problem


def test_an_answer_that_returns_nothing_is_told_so():
    def forgot_return(grads):
        grads.mean(axis=(-2, -1))

    problem, hint = feedback("gradcam_weights", forgot_return)
    assert problem == "your function returns nothing (did you forget `return`?)"
    assert "return statement" in hint


def test_the_grader_judges_none_raising_and_float32_results_as_the_check_does():
    # the grader reads the result back through the runner's JSON (runner.encode, cases.decode) and calls judge
    from tinycam.course.grading.cases import decode
    from tinycam.course.grading.runner import encode

    exercise = checks.EXERCISES["gradcam_weights"]
    label, args = exercise.cases(0)[1]
    right = R.gradcam_weights(*args)

    def through_the_grader(got):
        return exercise.judge(label, args, decode(json.loads(json.dumps(encode(got)))))

    assert through_the_grader(right) is None
    assert through_the_grader(None) == (framework.NO_RETURN, framework.NO_RETURN_HINT)
    problem, hint = through_the_grader(right.astype(np.float32))
    assert "your result is float32" in problem and "compute in float64" in hint
    problem, hint = through_the_grader(np.sum(args[0], axis=(-2, -1)).astype(np.float32))
    assert hint == exercise.mistakes[0].hint  # wrong at float32 precision too: its own mistake's hint
    first_label, first_args = exercise.cases(0)[0]  # the check's first case: the visible example
    for answer in (lambda g: None, lambda g: R.gradcam_weights(g).astype(np.float32),
                   lambda g: np.sum(g, axis=(-2, -1)).astype(np.float32), lambda g: np.mean(g, axis=-1)):
        got = decode(json.loads(json.dumps(encode(answer(*first_args)))))
        assert feedback("gradcam_weights", answer) == exercise.judge(first_label, first_args, got)
    problem, hint = through_the_grader(right.astype(np.float16))
    assert "your result is float16" in problem and "about 3 digits" in hint


def test_a_float32_tensor_is_told_to_compute_in_float64():
    import torch

    problem, hint = feedback("gradcam_weights_torch", lambda g: g.float().mean(dim=(-2, -1)))
    assert "your result is float32" in problem and "compute in float64" in hint
    problem, hint = feedback("gradcam_weights_torch", lambda g: g.to(torch.bfloat16).mean(dim=(-2, -1)))
    assert "your result is bfloat16" in problem and "compute in float64" in hint


def test_long_arrays_are_shown_on_one_line_by_their_first_differing_entry():
    want = np.arange(60.0).reshape(3, 4, 5)
    got = want.copy()
    got[1, 2, 3] += 1e-6
    got[2, 0, 0] = 0.5
    assert framework.disagreement(got, want) == (
        "at index (1, 2, 3) expected 33, got 33.000001 (2 of 60 entries differ, shape (3, 4, 5))")
    assert framework.disagreement(want[:2, 0, 0] + [0, 1e-7], want[:2, 0, 0]) == "expected [0, 20], got [0, 20.0000001]"
    assert framework.disagreement(np.float32(2.75), 2.7500001) == "expected 2.7500001, got 2.75"
    assert framework.disagreement(want[0], want) == "expected shape (3, 4, 5), got shape (4, 5)"
    assert framework.disagreement(3.0, want) == "expected shape (3, 4, 5), got shape () (3)"
    text = framework.disagreement({"a": "word " * 40}, want)
    assert "\n" not in text and text.endswith("word …") and len(text) < 120, text


def test_a_failed_check_shows_its_two_lines_alone_in_ipython(tmp_path):
    # a real IPython shell runs check cells; what it shows is captured and compared line for line
    cells = {
        "wrong": "checks.gradcam_weights(lambda g: g.sum(axis=(-2, -1)))",
        "raises": "def answer(g):\n    return g[7]\n\nchecks.gradcam_weights(answer)",
        "not_done": "def answer(g):\n    raise NotImplementedError()\n\nchecks.gradcam_weights(answer)",
        "right": "checks.gradcam_weights(lambda g: g.mean(axis=(-2, -1)))",
    }
    script = ("import json\n"
              "from IPython.core.interactiveshell import InteractiveShell\n"
              "from IPython.utils.capture import capture_output\n"
              "from traitlets.config import Config\n"
              "config = Config()\n"
              "config.HistoryManager.hist_file = ':memory:'\n"
              "shell = InteractiveShell.instance(config=config)\n"
              "shell.run_cell('from tinycam.course import checks')\n"
              "shown = {}\n"
              f"for key, cell in {cells!r}.items():\n"
              "    with capture_output() as captured:\n"
              "        result = shell.run_cell(cell)\n"
              "    error = result.error_in_exec\n"
              "    shown[key] = [captured.stdout, captured.stderr, type(error).__name__ if error else None,\n"
              "                  isinstance(error, AssertionError), isinstance(error, NotImplementedError)]\n"
              "print(json.dumps(shown))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "IPYTHONDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout.splitlines()[-1])
    problem, hint = feedback("gradcam_weights", lambda g: g.sum(axis=(-2, -1)))
    wrong = f"✗ gradcam_weights: {problem}\n  hint: {hint}\n"
    assert shown["wrong"] == [wrong, "", "CheckFailed", True, False]
    assert wrong.startswith("✗ gradcam_weights: wrong on the lecture example: expected [2.75, 4.25, 0.1], got ")
    assert shown["raises"][2:] == ["CheckFailed", True, False]
    assert shown["raises"][0] == ("✗ gradcam_weights: raised IndexError on the lecture example: index 7 is out of "
                                  "bounds for axis 0 with size 3 (at `return g[7]`)\n"
                                  f"  hint: {framework.RAISED_HINT}\n")
    assert shown["not_done"][0].startswith("… gradcam_weights: not done yet") and shown["not_done"][0].count("\n") == 1
    assert shown["not_done"][2:] == ["NotDoneYet", False, True]
    assert shown["right"][0].startswith("✓ gradcam_weights") and shown["right"][2] is None
    for out, err, *_ in shown.values():
        assert "Traceback" not in out + err and "framework.py" not in out + err and "checks" not in err


def test_exercise_registry():
    for ex in checks.EXERCISES.values():
        assert ex.points > 0 and ex.notebook[:2].isdigit()


def test_an_in_place_answer_cannot_change_what_it_is_judged_against():
    def in_place_wrong(g):
        g *= -1  # modifies the case's array, then returns the mean of the modified one
        return np.mean(g, axis=(-2, -1))

    assert "sign" in feedback("gradcam_weights", in_place_wrong)[1]


globals().update(check_tests("00", {n: a for n, a in CORRECT.items() if checks.EXERCISES[n].notebook.startswith("00")},
                              {n: w for n, w in WRONG.items() if checks.EXERCISES[n].notebook.startswith("00")}))
globals().update({f"{name}_01": test for name, test in check_tests(
    "01", {n: a for n, a in CORRECT.items() if checks.EXERCISES[n].notebook.startswith("01")},
    {n: w for n, w in WRONG.items() if checks.EXERCISES[n].notebook.startswith("01")}).items()})
