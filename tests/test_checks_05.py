"""The checks of notebook 05 (the Grad-CAM++ homework): right answers pass, planted mistakes get their hint."""

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tinycam import reference
from tinycam.course import checks, lecture
from tinycam.course.checks import nb05_gradcampp
from tinycam.course.checks.derivation import Step

from check_harness import check_tests, feedback

ROOT = Path(__file__).resolve().parent.parent

EXAMPLE = lecture.worked_example()


def _alphas_general(acts, d2, d3):
    denominator = 2 * d2 + np.sum(acts, axis=(-1, -2))[..., None, None] * d3
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, d2 / safe)


def _closed_form_cancelled(acts, grads):
    """1 / (2 + ΣA·g) where g ≠ 0, and 0 where g = 0: the same α, written after cancelling g²."""
    total = np.asarray(acts).sum(axis=(-2, -1), keepdims=True)
    denominator = 2.0 + total * grads
    ok = (grads != 0) & (denominator != 0)
    return np.where(ok, 1.0 / np.where(ok, denominator, 1.0), 0.0)


# exercise -> a correct answer (written differently from the reference where possible; the derivation's steps with
# arithmetic only, so that they run on SymPy symbols too)
CORRECT = {
    "gradcampp_score_model": lambda a, al, g: ((al * (g + abs(g)) / 2).sum(axis=(-2, -1))
                                               * a.sum(axis=(-2, -1))).sum(axis=-1),
    "twice_differentiated": lambda al, t, d2, d3: al * (2 * d2 + t * d3),
    "alpha_solved": lambda t, d2, d3: 1 / (2 + t * d3 / d2),
    "exp_chain_rule": lambda e, g, s2, s3: (g * e, e * g * g + e * s2, e * (g * (g * g + s2) + 2 * g * s2 + s3)),
    "alpha_exp_closed_form": lambda g, t: 1 / (2 + g * t),  # cancelled: equal where g ≠ 0, as the step asks
    "gradcampp_alphas_general": _alphas_general,
    "exp_score_derivatives": lambda grads, score: (np.exp(score) * np.square(grads), np.exp(score) * grads**3),
    "gradcampp_alpha_closed_form": _closed_form_cancelled,
    "gradcampp_weights_from_alphas": lambda alphas, grads: np.einsum("...ij,...ij->...", alphas,
                                                                     np.clip(grads, 0, None)),
}


def _hard_coded(value):
    return lambda *args: np.array(value)


def _blind(numerator, denominator):
    """numerator / denominator divided blindly: NaN (0/0) or inf where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _with_nan(acts, grads):
    """g² / (2g² + ΣA g³) divided blindly: NaN where g = 0."""
    return _blind(grads**2, 2 * grads**2 + np.asarray(acts).sum(axis=(-2, -1), keepdims=True) * grads**3)


def _eps(acts, grads, eps=1e-6):
    total = np.asarray(acts).sum(axis=(-2, -1), keepdims=True)
    return grads**2 / (2 * grads**2 + total * grads**3 + eps)


EXAMPLE_ALPHAS = reference.gradcampp_alphas(EXAMPLE["acts"], EXAMPLE["grads"])

def _numbers_only(t, d2, d3):
    """The right α, but written so that it cannot run on SymPy symbols."""
    return np.asarray(d2, dtype=np.float64) / (2 * d2 + t * d3)


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "gradcampp_score_model": [
        # a ReLU on the channel weight, not on each gradient: cannot run on symbols of both signs, caught on numbers
        (lambda a, al, g: (np.maximum((al * g).sum(axis=(-2, -1)), 0) * a.sum(axis=(-2, -1))).sum(axis=-1),
         "the ReLU acts on each pixel's gradient"),
        # everything summed into one number: right on one image, not on a batch
        (lambda a, al, g: ((al * np.maximum(g, 0)).sum(axis=(-2, -1)) * a.sum(axis=(-2, -1))).sum(), "Y adds up"),
        (lambda a, al, g: 7.113, "Y adds up"),  # the handwritten example's score, hard-coded
    ],
    "twice_differentiated": [
        (lambda al, t, d2, d3: 2 * al * d2 + t * al * d3 + al * d2, "simplifies to alpha*(3*d2 + d3*total), which is not the step"),
        (lambda al, t, d2, d3: d2, "differentiate the equation of step 1"),  # the left-hand side
    ],
    "alpha_solved": [
        (_numbers_only, "arithmetic only"),
        (lambda t, d2, d3: d2 / (2 * d2 + t * d3 + 1e-9), "no ε"),
        (lambda t, d2, d3: 1 / (2 + t), "factor it out and divide"),
    ],
    "exp_chain_rule": [
        (lambda e, g, s2, s3: (e * g, e * (g**2 + s2)), "return the three derivatives in order"),  # two only
        (lambda e, g, s2, s3: (e * g, e * g**2 + s2, e * (g**3 + 3 * g * s2 + s3)), "chain rule"),  # e^S on g² only
    ],
    "alpha_exp_closed_form": [
        (lambda g, t: g**2 / (2 * g**2 + t * g**3 + 1e-30), "no ε"),
        (lambda g, t: g / (2 * g + t * g**3), "powers of g remain"),
    ],
    "gradcampp_alphas_general": [
        (lambda a, d2, d3: d2 / (d2 + a.sum(axis=(-2, -1), keepdims=True) * d3), "a 2 in front of d2"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a * d3), "every pixel (a, b)"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-3, -2, -1), keepdims=True) * d3), "not over all the maps"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3 + 1e-6), "no ε"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3), "no NaN"),
        (lambda a, d2, d3: d2 / (2 * d2 + a.sum(axis=(-2, -1), keepdims=True) * d3 + 1e-12), "no ε"),  # any size
        (lambda a, d2, d3: _blind(d2, 2 * d2 - a.sum(axis=(-2, -1), keepdims=True) * d3), "check the sign"),
        (lambda a, d2, d3: _blind(d2, 2 * d2 + a.mean(axis=(-2, -1), keepdims=True) * d3), "no 1/Z"),
        (_hard_coded(EXAMPLE_ALPHAS), "the α of step 3"),  # the visible example's answer
    ],
    "exp_score_derivatives": [
        (lambda g, s: (g**2, g**3), "keeps the factor exp(S)"),
        (lambda g, s: (s * g**2, s * g**3), "not S"),
        (lambda g, s: (np.exp(s) * g, np.exp(s) * g**2), "count the derivatives"),
        (lambda g, s: (np.exp(s) * g**3, np.exp(s) * g**2), "(second derivative, third derivative)"),
        (lambda g, s: np.exp(s) * g**2, "differentiate exp(S)"),  # only the second derivative
        (_hard_coded([np.exp(2.0) * EXAMPLE["grads"] ** 2, np.exp(2.0) * EXAMPLE["grads"] ** 3]), "return the pair"),
    ],
    "gradcampp_alpha_closed_form": [
        (_eps, "no ε"),
        (lambda a, g: _eps(a, g, eps=1e-7), "no ε"),  # a smaller epsilon is still wrong
        (lambda a, g: _eps(a, g, eps=1e-12), "no ε"),  # and a tiny one, where the gradients are ~1e-6
        (lambda a, g: 1.0 / (2.0 + np.asarray(a).sum(axis=(-2, -1), keepdims=True) * g), "cancelling g²"),
        (lambda a, g: g**2 / (g**2 + a.sum(axis=(-2, -1), keepdims=True) * g**3), "twice the squared gradient"),
        (lambda a, g: g**2 / (2 * g**2 + a * g**3), "every pixel (a, b)"),
        (lambda a, g: g**2 / (2 * g**2 + a.sum(axis=(-3, -2, -1), keepdims=True) * g**3), "not over all the maps"),
        (_with_nan, "no NaN"),
        (lambda a, g: _blind(1.0, 2.0 - np.asarray(a).sum(axis=(-2, -1), keepdims=True) * g) * (g != 0), "the sign"),
        (lambda a, g: _blind(g**2, 2 * g**2 + np.asarray(a).mean(axis=(-2, -1), keepdims=True) * g**3), "no 1/Z"),
        (_hard_coded(EXAMPLE_ALPHAS), "the factor exp(S) cancels"),
    ],
    "gradcampp_weights_from_alphas": [
        (lambda al, g: (al * g).sum(axis=(-2, -1)), "only the positive gradients"),
        (lambda al, g: (al * np.maximum(g, 0)).mean(axis=(-2, -1)), "do not average"),
        (lambda al, g: (al * np.maximum(g, 0)).sum(axis=-3), "keeping one weight per feature map"),
        (lambda al, g: np.mean(g, axis=(-2, -1)), "not Grad-CAM's mean"),
        (lambda al, g: np.maximum(al * g, 0).sum(axis=(-2, -1)), "positive part of the gradient alone"),
        (lambda al, g: np.einsum("...ij,...ij->...", al / al.sum(axis=(-2, -1), keepdims=True), np.maximum(g, 0)),
         "normalizing α to sum to 1 over each map"),
        (_hard_coded([1.391, 0.782, 0.197]), "one weight per map"),
    ],
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_cases_are_drawn_from_the_seed_and_start_with_the_handwritten_example(name):
    cases = checks.EXERCISES[name].cases
    first, again, other = cases(7), cases(7), cases(8)
    assert "handwritten" in first[0][0] and len(first) >= 5
    for (_, args), (_, args_again), (_, args_other) in zip(first[1:], again[1:], other[1:], strict=True):
        arrays = [np.asarray(x) for x in args if np.ndim(x) > 0]
        assert all(x.dtype == np.float64 and x.ndim in (3, 4) for x in arrays)
        assert all(np.array_equal(x, y) for x, y in zip(args, args_again, strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(args, args_other, strict=True))


def test_random_cases_hold_exact_zero_gradients_and_a_small_gradient_case():
    cases = checks.EXERCISES["gradcampp_alpha_closed_form"].cases(0)
    assert all((grads == 0).any() for _, (_, grads) in cases[1:])
    assert any(0 < np.abs(grads).max() < 1e-2 for _, (_, grads) in cases)  # where an epsilon of 1e-6 shows


def test_the_visible_examples_are_the_handwritten_numbers():
    acts, grads = EXAMPLE["acts"], EXAMPLE["grads"]
    alphas = _closed_form_cancelled(acts, grads)
    # map 1: ΣA = 2.1, g = 2 -> 1 / (2 + 4.2); map 3: ΣA = 3, g = 0.2 -> 1 / 2.6
    assert alphas[0, 0, 0] == pytest.approx(1 / 6.2) and alphas[2, 1, 0] == pytest.approx(1 / 2.6)
    weights = CORRECT["gradcampp_weights_from_alphas"](alphas, grads)
    np.testing.assert_allclose(weights, [1.3912, 0.7824, 0.1973], atol=1e-4)
    (_, (_, d2, d3)) = checks.EXERCISES["gradcampp_alphas_general"].cases(0)[0]
    np.testing.assert_allclose(_alphas_general(acts, d2, d3), alphas, rtol=1e-12)


globals().update(check_tests("05", CORRECT, WRONG))


# ---------------------------------------------------------------------------------------------------------------
# the derivation's steps: proved on SymPy symbols, judged on numbers

STEPS = [exercise.name for exercise in nb05_gradcampp.DERIVATION]
STEP_MISTAKES = [(name, index) for name in STEPS for index in range(len(checks.EXERCISES[name].mistakes))]


def _planted(mistake):
    """The answers that make `mistake`: one, or one per example parameter (an ε of each size)."""
    if mistake.fit is None:
        return [mistake.wrong]
    return [lambda *args, p=parameter: mistake.wrong(*args, p) for parameter in mistake.examples]


def _proof(exercise, answer):
    """The symbolic check of `answer` alone: the ✓ line's ending, or (problem, hint) of its ✗ line."""
    try:
        return exercise.prove(answer)
    except checks.CheckFailed as failure:
        return failure.problem, failure.hint


PROVED = ", and proved equal to the step on symbols"  # the ✓ line's ending, as the notebook prints it


@pytest.mark.parametrize("name", STEPS)
def test_the_right_step_is_proved_on_symbols_and_the_cases_are_plain_numbers(name):
    exercise = checks.EXERCISES[name]
    assert isinstance(exercise, Step)  # one derivation-step check for the course (notebook 02's too)
    assert _proof(exercise, exercise.expected) == _proof(exercise, CORRECT[name]) == PROVED
    for seed in (0, 5):
        for _, args in exercise.cases(seed):  # what the grader pickles for its sandbox: float64 arrays only
            assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in args), name


@pytest.mark.parametrize("name, index", STEP_MISTAKES, ids=[f"{n}-{i}" for n, i in STEP_MISTAKES])
def test_every_wrong_step_is_recognised_on_symbols_and_on_numbers(name, index):
    exercise = checks.EXERCISES[name]
    mistake = exercise.mistakes[index]
    for answer in _planted(mistake):
        problem, hint = _proof(exercise, answer)  # the SymPy path: the expression itself is wrong
        assert problem.startswith("wrong on symbols") and " simplif" in problem and hint == mistake.hint, (problem,
                                                                                                          hint)
        # the numeric path (the grader's): the first case it fails on gives the same hint
        verdicts = [exercise.judge(label, args, answer(*args)) for label, args in exercise.cases(3)]
        first = next(v for v in verdicts if v is not None)
        assert first[1] == mistake.hint, first


def test_an_epsilon_is_recognised_on_symbols_whatever_its_size():
    for name in ("alpha_solved", "alpha_exp_closed_form"):
        exercise = checks.EXERCISES[name]
        for eps in (1e-3, 1e-7, 1e-40):  # 1e-7 and 1e-40: no simple fraction within 1e-12 of them, not rounding
            def answer(*args, eps=eps, mistake=exercise.mistakes[0]):
                return mistake.wrong(*args, eps)

            assert _proof(exercise, answer)[1] == nb05_gradcampp._EPS_HINT


def test_a_step_written_with_float_constants_is_proved():
    # 2.0, 0.5 and 1/3 computed in floats are the exact 2, 1/2 and 1/3 on symbols
    exercise = checks.EXERCISES["alpha_solved"]
    assert _proof(exercise, lambda t, d2, d3: 0.5 * d2 / (1.0 * d2 + 0.5 * t * d3)) == PROVED
    assert _proof(exercise, lambda t, d2, d3: (1 / 3) * d2 / ((2 / 3) * d2 + (1 / 3) * t * d3)) == PROVED


def test_a_step_that_cannot_run_on_symbols_is_told_to_use_arithmetic_unless_the_numbers_say_more():
    problem, hint = feedback("alpha_solved", _numbers_only)  # right on numbers
    assert problem.startswith("raised TypeError on symbols") and "arithmetic only" in hint
    assert "np.maximum(x, 0) for a ReLU" in hint  # notebook 05's operations, not notebook 02's
    problem, hint = feedback("alpha_solved", lambda t, d2, d3: _numbers_only(t, d2, d3) + 1.0)  # no known mistake
    assert problem.startswith("raised TypeError on symbols") and "arithmetic only" in hint
    # a known mistake on the numbers: its hint (the ReLU of the score model on the channel weight, not each gradient)
    problem, hint = feedback("gradcampp_score_model", WRONG["gradcampp_score_model"][0][0])
    assert problem.startswith("wrong on the handwritten example") and "each pixel's gradient" in hint
    problem, hint = feedback("alpha_solved", lambda t, d2, d3: float(d2) / (2 * d2 + t * d3))  # raises on numbers too
    assert problem.startswith("raised TypeError on the handwritten example") and "arithmetic" not in hint


def test_a_step_of_several_expressions_is_compared_item_by_item():
    exercise = checks.EXERCISES["exp_chain_rule"]
    problem, hint = _proof(exercise, lambda e, g, s2, s3: (e * g, e * (g**2 + s2)))  # two of the three
    assert problem == "wrong on symbols: expected 3 expressions (a tuple) of the symbols, got 2 expressions"
    assert hint == exercise.hint
    problem, _ = _proof(exercise, lambda e, g, s2, s3: (e * g, e * (g**2 + s2), e * g**3))  # the third wrong
    assert problem.startswith("wrong on symbols: your expressions simplify to (exp_s*g, ")
    # an object array of the three (np.stack of symbols) is the same step
    assert _proof(exercise, lambda e, g, s2, s3: np.array(CORRECT["exp_chain_rule"](e, g, s2, s3))) == PROVED


def test_an_answer_that_changes_its_symbols_in_place_is_judged_against_the_untouched_ones():
    exercise = checks.EXERCISES["gradcampp_score_model"]

    def in_place(a, al, g):
        g[g.astype(bool)] = np.maximum(g[g.astype(bool)], 0)  # the ReLU applied to the argument itself
        return ((al * g).sum(axis=(-2, -1)) * a.sum(axis=(-2, -1))).sum(axis=-1)

    assert _proof(exercise, in_place) == PROVED
    (_, (_, _, grads)), = exercise.symbols()
    assert {g.is_positive for g in grads.ravel()} == {True, False}


def test_the_relu_of_the_score_model_is_proved_with_signed_symbols():
    exercise = checks.EXERCISES["gradcampp_score_model"]
    (_, (acts, alphas, grads)), = exercise.symbols()
    assert {g.is_positive for g in grads.ravel()} == {True, False}
    # ReLU written with np.maximum, with abs, or with np.where: all proved equal
    for relu in (lambda g: np.maximum(g, 0), lambda g: (g + abs(g)) / 2):
        def answer(a, al, g, relu=relu):
            return ((al * relu(g)).sum(axis=(-2, -1)) * a.sum(axis=(-2, -1))).sum(axis=-1)

        assert _proof(exercise, answer) == PROVED


def test_the_chain_rule_step_agrees_with_autograd_on_a_smooth_score():
    # the exercise's expected derivatives of Y = exp(S) against exact ones (nested forward-mode autograd), for a
    # score that is not piecewise linear (softplus, so ∂²S, ∂³S ≠ 0), with Y = exp(S) itself and with exp(S − S0)
    torch = pytest.importorskip("torch")
    from tinycam.derivatives import diagonal_derivatives, exp_score

    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(2, 3, 3, dtype=torch.float64, generator=generator)
    acts = torch.rand(2, 3, 3, dtype=torch.float64, generator=generator)

    def score(a):
        return torch.nn.functional.softplus(weights * a).sum() + 0.3 * torch.sin((weights * a).sum())

    g, s2, s3 = (d.numpy() for d in diagonal_derivatives(score, acts, order=3))
    assert np.abs(s2).max() > 1e-2 and np.abs(s3).max() > 1e-2  # curved: the terms with ∂²S and ∂³S matter
    for name, fn, exp_s in [("exp(S)", lambda a: torch.exp(score(a)), float(torch.exp(score(acts)))),
                            ("exp(S - S0)", exp_score(score, acts), 1.0)]:
        want = [d.numpy() for d in diagonal_derivatives(fn, acts, order=3)]
        for answer in (checks.EXERCISES["exp_chain_rule"].expected, CORRECT["exp_chain_rule"]):
            got = answer(exp_s, g, s2, s3)
            for order, (a, b) in enumerate(zip(got, want, strict=True), 1):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=0, err_msg=f"{name}, order {order}")


# ---------------------------------------------------------------------------------------------------------------
# the student copy of notebook 05: the derivation is asked, not given

STUDENT = ROOT / "notebooks" / "student" / "05_gradcampp.ipynb"
SOLUTION = ROOT / "notebooks" / "05_gradcampp.ipynb"
# the worked derivation's formulas, as the solution notebook writes them (boxed (3) and (5), (4), the chain rule, the
# cancelled form and the summary's answer)
DERIVATION_TEXT = [
    r"\boxed{\;\alpha^{kc}_{ij} = \frac{\partial^2 Y}{2\,\partial^2 Y + \sum_{a,b} A^k_{ab}\, \partial^3 Y}\;}",
    r"\boxed{\;\frac{g^2}{2 g^2 + \sum_{a,b} A^k_{ab}\; g^3}\;}",
    r"\partial^2 Y = e^{S} g^2, \qquad \partial^3 Y = e^{S} g^3",
    r"\partial^3 Y = e^{S}\big(g^3 + 3\, g\, \partial^2 S + \partial^3 S\big)",
    r"\partial^2 Y = 2\, \alpha^{kc}_{ij}\, \partial^2 Y",
    r"\alpha = 1 / (2 + g \sum_{ab} A^k_{ab})",
    "This is the answer to the lecture's homework",
    "return d2 / (2 * d2 + total * d3)",
    "return g**2 / (2 * g**2 + total * g**3)",
]


def _source(path):
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


def test_the_solution_notebook_holds_the_derivation_and_the_student_copy_none_of_it():
    solution, student = _source(SOLUTION), _source(STUDENT)
    for text in DERIVATION_TEXT:
        assert text in solution, text  # the list is the solution's text, so its absence below means something
        assert text not in student, f"the student copy of 05 gives away {text!r}"


def test_no_docstring_of_notebook_05_states_its_formula():
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        if cell.cell_type != "code" or "exercise" not in cell.metadata.get("tags", []):
            continue
        (function,) = [node for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)]
        first_line = ast.get_docstring(function).split("\n")[0]
        assert not re.search(r"=|/|²|³|\*\*", first_line), first_line  # what it computes, not how


@pytest.mark.parametrize("name", [e.name for e in nb05_gradcampp.EXERCISES])
def test_every_exercise_of_the_student_copy_says_not_done_yet(name, capsys):
    cells = nbformat.read(STUDENT, as_version=4).cells
    (source,) = [c.source for c in cells if c.cell_type == "code" and c.source.startswith(f"def {name}(")]
    namespace = {"np": np}
    exec(source, namespace)
    with pytest.raises(checks.NotDoneYet) as failure:
        getattr(checks, name)(namespace[name])
    assert failure.value._render_traceback_() == [failure.value.lines[0]]
    assert "not done yet" in failure.value.lines[0] and capsys.readouterr().out == ""


def test_the_written_answers_are_questions_in_the_student_copy_and_answered_in_the_solution():
    from tinycam.course.grading.written import written_answers

    asked = written_answers(nbformat.read(STUDENT, as_version=4))
    answered = written_answers(nbformat.read(SOLUTION, as_version=4))
    assert len(asked) == len(answered) == 2
    assert [a["question"] for a in asked] == [a["question"] for a in answered]
    assert all(a["question"].startswith("**") and a["question"].endswith("**") for a in asked)
    assert all(a["answer"] == "" for a in asked) and all(len(a["answer"]) > 200 for a in answered)
    assert "A^3" in asked[1]["question"] and "pole" in answered[0]["answer"]
