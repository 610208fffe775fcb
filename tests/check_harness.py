"""The tests every notebook's checks must pass, built from its tables of right and wrong answers.

A test file for notebook NN defines CORRECT = {exercise: a right answer} and WRONG = {exercise: [(wrong answer,
a fragment of the hint it must get), ...]} and binds the tests below with
`globals().update(check_tests("NN", CORRECT, WRONG))`. WRONG holds answers the exercise's known mistakes do not spell
out (written another way, hard-coded, wrong axes or dtype); each known mistake itself is tested in test_checks.py.
"""

import numpy as np
import pytest

from tinycam.course import checks

# exercises whose answers are integers: computed in float32 they are still exact, and pass
EXACT_IN_FLOAT32 = {"output_size", "receptive_field"}


def feedback(name, answer):
    """(the ✗ line's problem, the hint line) of `answer`'s failed check: exactly two lines, each one line, the ✗
    line first; the exception is a CheckFailed (an AssertionError) that IPython shows as those lines alone."""
    with pytest.raises(AssertionError) as failure:
        checks.EXERCISES[name].check(answer)
    error = failure.value
    assert isinstance(error, checks.CheckFailed), repr(error)
    lines = error._render_traceback_()
    assert len(lines) == 2 and not any("\n" in line for line in lines), lines
    assert lines[0].startswith(f"✗ {name}: ") and lines[1].startswith("  hint: "), lines
    assert str(error) == "\n".join(lines)
    return lines[0].removeprefix(f"✗ {name}: "), lines[1].removeprefix("  hint: ")


def to_float32(x):
    """`x` with every float array or tensor in it made float32 (a list or tuple stays one)."""
    if isinstance(x, (list, tuple)):
        return type(x)(to_float32(item) for item in x)
    if hasattr(x, "detach"):  # a torch tensor
        return x.float() if x.is_floating_point() else x
    if isinstance(x, (np.ndarray, np.floating, float)):
        return np.asarray(x, dtype=np.float32)
    return x


def in_float32(name, answer):
    """Check `answer` computed in float32 (its float inputs and its result made float32): None when the check
    passes, else (problem, hint)."""
    def float32_answer(*args):
        return to_float32(answer(*to_float32(args)))

    try:
        checks.EXERCISES[name].check(float32_answer)
    except AssertionError:
        return feedback(name, float32_answer)
    return None


def check_tests(notebook, correct, wrong):
    names = sorted(correct)

    def test_every_exercise_of_the_notebook_has_cases_here():
        registered = {n for n, ex in checks.EXERCISES.items() if ex.notebook.startswith(notebook)}
        assert set(correct) == registered == set(wrong)

    @pytest.mark.parametrize("name", names)
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_correct_answer_passes(name, seed, capsys):
        checks.EXERCISES[name].check(correct[name], seed=seed)  # raises when wrong
        assert capsys.readouterr().out.startswith(f"✓ {name}")

    @pytest.mark.parametrize("name, answer, hint", [(n, w, h) for n, cases in wrong.items() for w, h in cases])
    def test_wrong_answer_fails_with_its_hint(name, answer, hint, capsys):
        problem, hint_line = feedback(name, answer)
        assert hint in f"{problem}\n{hint_line}", (problem, hint_line)
        assert capsys.readouterr().out == ""  # the lines are the exception's, shown by IPython without a traceback

    @pytest.mark.parametrize("name", names)
    def test_placeholder_reports_not_done_yet(name, capsys):
        def placeholder(*args):
            raise NotImplementedError()

        exercise = checks.EXERCISES[name]
        with pytest.raises(NotImplementedError, match="not done yet") as failure:
            exercise.check(None if exercise.is_value else placeholder)
        assert isinstance(failure.value, checks.NotDoneYet)
        (line,) = failure.value._render_traceback_()
        assert line.startswith(f"… {name}: not done yet") and capsys.readouterr().out == ""

    @pytest.mark.parametrize("name", [n for n in names if not checks.EXERCISES[n].is_value])
    def test_the_right_answer_computed_in_float32_is_told_to_compute_in_float64(name, capsys):
        problem = in_float32(name, correct[name])
        if problem is None:  # passed: every number of every case is exact in float32
            assert name in EXACT_IN_FLOAT32, f"{name}: a float32 answer passed"
            assert capsys.readouterr().out.startswith(f"✓ {name}")
        else:
            assert name not in EXACT_IN_FLOAT32
            assert "your result is float32" in problem[0] and "compute in float64" in problem[1], problem

    every_exercise_has_cases = test_every_exercise_of_the_notebook_has_cases_here
    return {
        f"test_every_exercise_of_notebook_{notebook}_has_cases_here": every_exercise_has_cases,
        "test_correct_answer_passes": test_correct_answer_passes,
        "test_wrong_answer_fails_with_its_hint": test_wrong_answer_fails_with_its_hint,
        "test_placeholder_reports_not_done_yet": test_placeholder_reports_not_done_yet,
        "test_the_right_answer_computed_in_float32_is_told_to_compute_in_float64":
            test_the_right_answer_computed_in_float32_is_told_to_compute_in_float64,
    }
