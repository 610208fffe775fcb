"""The tests every notebook's checks must pass, built from its tables of right and wrong answers.

A test file for notebook NN defines CORRECT = {exercise: a right answer} and WRONG = {exercise: [(wrong answer,
a fragment of the hint it must get), ...]} and binds the tests below with
`globals().update(check_tests("NN", CORRECT, WRONG))`. WRONG holds answers the exercise's known mistakes do not spell
out (written another way, hard-coded, wrong axes or dtype); each known mistake itself is tested in test_checks.py.
"""

import pytest

from tinycam.course import checks


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
        with pytest.raises(AssertionError):
            checks.EXERCISES[name].check(answer)
        out = capsys.readouterr().out
        assert out.startswith(f"✗ {name}") and hint in out, out

    @pytest.mark.parametrize("name", names)
    def test_placeholder_reports_not_done_yet(name, capsys):
        def placeholder(*args):
            raise NotImplementedError()

        exercise = checks.EXERCISES[name]
        with pytest.raises(NotImplementedError, match="not done yet"):
            exercise.check(None if exercise.is_value else placeholder)
        assert "not done yet" in capsys.readouterr().out

    every_exercise_has_cases = test_every_exercise_of_the_notebook_has_cases_here
    return {
        f"test_every_exercise_of_notebook_{notebook}_has_cases_here": every_exercise_has_cases,
        "test_correct_answer_passes": test_correct_answer_passes,
        "test_wrong_answer_fails_with_its_hint": test_wrong_answer_fails_with_its_hint,
        "test_placeholder_reports_not_done_yet": test_placeholder_reports_not_done_yet,
    }
