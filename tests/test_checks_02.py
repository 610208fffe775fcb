"""The checks of notebook 02 (CAM) accept right answers and reject planted mistakes with the right hint; the
derivation's steps are proved on SymPy symbols and checked against autograd, and the student copy keeps none of the
derivation's answers."""

import json
import pickle
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import tinycam
from tinycam import reference as R
from tinycam.course import checks
from tinycam.course.checks.derivation import SYMBOLS_HINT, equal, is_symbolic

from check_harness import check_tests, feedback

ROOT = Path(__file__).resolve().parent.parent
DERIVATION = ["gap_score", "gap_score_gradient", "gap_gradient_sum", "gap_gradcam_weight"]


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
    # the derivation's steps, with arithmetic only: they run on symbols and on numbers
    "gap_score": lambda maps, weights, bias: sum(w * f for w, f in zip(weights, [sum(m) / len(m) for m in maps])) + bias,
    "gap_score_gradient": lambda maps, weights, bias, k, pixel: weights[k] * (1 / len(maps[k])),  # 1/Z as a float
    "gap_gradient_sum": lambda maps, weights, bias, k: sum(weights[k] / len(maps[k]) for _ in maps[k]),
    "gap_gradcam_weight": lambda maps, weights, bias, k: weights[k] / len(maps[k]),
}

# other correct answers, in other styles
ALSO_CORRECT = [
    ("cam_class_score", _class_score_torch),
    ("cam_class_score", lambda a, w, b: R.gap(R.cam(a, w)) + b),  # the score is the mean of the CAM, plus b
    ("cam_map", lambda a, w: (np.asarray(w)[..., :, None, None] * a).sum(axis=-3)),
    ("cam_map", lambda a, w: torch.einsum("...k,...kij->...ij", torch.as_tensor(w), torch.as_tensor(a))),
    ("cam_weights_from_grads", lambda g: torch.as_tensor(g).sum(dim=(-2, -1))),
    ("gap_score", lambda maps, weights, bias: np.dot(weights, [np.mean(m) for m in maps]) + bias),  # object arrays
    ("gap_score", lambda maps, weights, bias: bias + sum(weights[k] * maps[k][p] / len(maps[k])
                                                         for k in range(len(maps)) for p in range(len(maps[k])))),
    ("gap_gradient_sum", lambda maps, weights, bias, k: len(maps[k]) * CORRECT["gap_score_gradient"](
        maps, weights, bias, k, 0)),  # reuses step 2's answer
    ("gap_gradcam_weight", lambda maps, weights, bias, k: CORRECT["gap_gradient_sum"](maps, weights, bias, k)
     / len(maps[k])),
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
    "gap_score": [
        (lambda m, w, b: sum(wk * max(mk) for wk, mk in zip(w, m)) + b, "arithmetic only"),  # max pooling
        (lambda m, w, b: float(np.dot(w, np.asarray(m, dtype=float).mean(axis=1)) + b), "arithmetic only"),
        (lambda m, w, b: [sum(wk * sum(mk) / len(mk) for wk, mk in zip(w, m)) + b], "arithmetic only"),  # a list
        (lambda m, w, b: sum(wk * mk[0] for wk, mk in zip(w, m)) + b, "Y^c is the bias plus"),  # one pixel
        (lambda m, w, b: 24.625, "Y^c is the bias plus"),  # the visible example's answer
        (lambda m, w, b: None, "return statement"),
    ],
    "gap_score_gradient": [
        (lambda m, w, b, k, p: w[k] / len(m[k]) / len(m[k]), "follow the one path"),
        (lambda m, w, b, k, p: w[k] / 5, "follow the one path"),  # Z of the first symbolic case written in
        (lambda m, w, b, k, p: 4.25, "follow the one path"),  # the visible example's answer
        (lambda m, w, b, k, p: np.asarray(w, dtype=float)[k] / len(m[k]), "arithmetic only"),
        (lambda m, w, b, k, p: sum(w[j] * m[j][p] for j in range(len(w))) / len(m[k]), "follow the one path"),
    ],
    "gap_gradient_sum": [
        (lambda m, w, b, k: sum(w[k] for _ in m[k]), "copies of the weight"),
        (lambda m, w, b, k: w[k] * len(m) / len(m[k]), "add up step 2's gradient"),
        (lambda m, w, b, k: 11.0, "add up step 2's gradient"),  # the visible example's answer
    ],
    "gap_gradcam_weight": [
        (lambda m, w, b, k: w[k] / (len(m[k]) - 1), "the average of the gradient map"),
        (lambda m, w, b, k: np.mean(np.asarray(m[k], dtype=float)) * w[k], "arithmetic only"),
        (lambda m, w, b, k: max(w[k], 0) / len(m[k]), "arithmetic only"),  # a ReLU on the weight
        (lambda m, w, b, k: 2.75, "the average of the gradient map"),  # the visible example's answer
    ],
}


def test_the_visible_examples_are_the_ones_the_notebook_shows():
    (_, (acts, weights, bias)), *_ = checks.EXERCISES["cam_class_score"].cases(0)
    assert R.gap(acts) @ weights + bias == pytest.approx(24.625)
    assert np.allclose(R.cam(acts, weights), [[35.7, -8.1], [64.5, 10.4]])
    (_, (grads,)), *_ = checks.EXERCISES["cam_weights_from_grads"].cases(0)
    assert np.allclose(R.cam_weights_from_gradients(grads), [11.0, 17.0, 0.4])
    assert np.allclose(R.cam_weights_from_gradients(grads), 4 * R.gradcam_weights(grads))  # Z = 4


def _deriv(name, answer, seed=0):
    """The ✓ line of `answer`'s check, or the CheckFailed it raises."""
    checks.EXERCISES[name].check(answer, seed=seed)


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
    for name in DERIVATION:
        getattr(checks, name)(CORRECT[name])
    out = capsys.readouterr().out
    assert out.count("✓") == 3 + len(DERIVATION) and out.count("proved equal to") == len(DERIVATION)


# ---------------------------------------------------------------------------------------------------------------
# the derivation's steps: the symbolic path and the numeric path


def test_the_symbolic_expectations_are_the_derivations_results():
    import sympy

    for name, want in [("gap_score_gradient", "w_1/5"), ("gap_gradient_sum", "w_1"), ("gap_gradcam_weight", "w_1/5")]:
        (_, args), _ = checks.EXERCISES[name].symbols()
        assert equal(checks.EXERCISES[name].expected(*args), sympy.sympify(want)), name
    (_, (maps, weights, bias)), _ = checks.EXERCISES["gap_score"].symbols()
    a = sympy.Matrix(maps)
    assert equal(checks.EXERCISES["gap_score"].expected(maps, weights, bias),
                 sum(weights[k] * sum(a.row(k)) / 5 for k in range(3)) + bias)


@pytest.mark.parametrize("name", DERIVATION)
def test_each_step_is_proved_on_symbols_of_two_sizes(name):
    exercise = checks.EXERCISES[name]
    cases = exercise.symbols()
    sizes = {(len(args[0]), len(args[0][0])) for _, args in cases}
    assert len(sizes) == 2 and all(is_symbolic(args[2]) for _, args in cases)
    for label, args in cases:
        assert exercise.judge_symbols(label, args, CORRECT[name](*args)) is None
        problem, hint = exercise.judge_symbols(label, args, exercise.mistakes[0].wrong(*args))
        assert hint == exercise.mistakes[0].hint and "simplifies to" in problem


@pytest.mark.parametrize("name", DERIVATION)
def test_a_wrong_step_is_shown_as_the_students_expression_never_the_expected_one(name):
    import sympy

    exercise = checks.EXERCISES[name]
    label, args = exercise.symbols()[0]
    want = sympy.sstr(sympy.simplify(exercise.expected(*args)))
    for mistake in exercise.mistakes:
        wrong = sympy.sstr(sympy.simplify(mistake.wrong(*args)))
        problem, _ = exercise.judge_symbols(label, args, mistake.wrong(*args))
        assert f"your expression simplifies to {wrong[:100]}" in problem, problem
        assert want not in problem.replace(wrong[:110], ""), problem


def test_float_constants_and_numpy_object_arrays_are_judged_as_expressions():
    import sympy

    w, b = sympy.symbols("w b")
    assert equal(w * (1 / 3), w / 3) and equal(w * 0.25 + b, w / 4 + b)
    assert not equal(w * 0.3333, w / 3) and not equal(w / 4, w / 3)
    exercise = checks.EXERCISES["gap_gradcam_weight"]
    label, args = exercise.symbols()[0]
    assert exercise.judge_symbols(label, args, np.array([args[1][1] / 5], dtype=object)) is None
    problem, hint = exercise.judge_symbols(label, args, "w_1/4")
    assert "expected one expression" in problem and hint == SYMBOLS_HINT


def test_right_on_numbers_but_not_on_symbols_is_told_to_use_arithmetic():
    problem, hint = feedback("gap_score_gradient", lambda m, w, b, k, p: np.asarray(w, dtype=np.float64)[k] / len(m[k]))
    assert problem.startswith("raised TypeError on symbols (K = 3 maps of Z = 5 pixels), k = 1, pixel 2")
    assert hint == SYMBOLS_HINT


def test_right_on_symbols_but_not_on_numbers_is_caught_by_the_numeric_cases():
    def symbols_only(maps, weights, bias, k, pixel):  # the right step on symbols, the weight itself on numbers
        return weights[k] / len(maps[k]) if is_symbolic(bias) else weights[k]

    problem, hint = feedback("gap_score_gradient", symbols_only)
    assert problem.startswith("wrong on the 2x2 example") and "expected 4.25, got 17" in problem
    assert hint == checks.EXERCISES["gap_score_gradient"].mistakes[0].hint


def test_an_answer_raising_on_numbers_too_gets_the_numeric_cases_error_line():
    problem, hint = feedback("gap_gradient_sum", lambda m, w, b, k: w[k] + undefined_name)  # noqa: F821
    assert problem.startswith("raised NameError on the 2x2 example") and "your own code" in hint


@pytest.mark.parametrize("name", DERIVATION)
def test_the_grader_gets_plain_numbers_and_judges_without_sympy(name):
    from tinycam.course.grading.cases import decode, hidden_seed
    from tinycam.course.grading.runner import encode

    exercise = checks.EXERCISES[name]
    cases = exercise.cases(hidden_seed("a secret", name))
    for label, args in cases:
        for arg in args:
            assert isinstance(arg, (int, float, np.ndarray)) and not is_symbolic(arg), (label, type(arg))
            assert not isinstance(arg, np.ndarray) or arg.dtype == np.float64
        args = pickle.loads(pickle.dumps(args))  # as the judging process receives them
        got = decode(json.loads(json.dumps(encode(CORRECT[name](*args)))))
        assert exercise.judge(label, args, got) is None
        wrong = decode(json.loads(json.dumps(encode(exercise.mistakes[0].wrong(*args)))))
        assert exercise.judge(label, args, wrong)[1] == exercise.mistakes[0].hint


def test_the_numeric_expectations_are_the_real_gap_models_autograd():
    # the last numeric case holds one test image's maps in the trained GAP model: the check's expected score and
    # gradient (autograd through a float64 GAP + linear head) are the model's own score and autograd gradient
    model = tinycam.load_model("gap")
    from tinycam.shapes import make_images

    images = torch.from_numpy(make_images(64, seed=10000).images)
    for seed in [0, 1]:
        label, (maps, weights, bias, k, pixel) = checks.EXERCISES["gap_score_gradient"].cases(seed)[-1]
        image = int(re.search(r"#(\d+)", label)[1])
        captured = tinycam.capture(model, images[image : image + 1], model.last_conv)
        c = int(captured.targets[0])
        assert np.array_equal(weights, model.classifier.weight.detach().double()[c].numpy())
        grads = captured.grads[0].double().flatten(start_dim=-2).numpy()  # (64, 256)
        assert checks.EXERCISES["gap_score_gradient"].expected(maps, weights, bias, k, pixel) == grads[k, pixel]
        assert checks.EXERCISES["gap_gradient_sum"].expected(maps, weights, bias, k) == pytest.approx(
            grads[k].sum(), rel=1e-12)
        assert checks.EXERCISES["gap_gradcam_weight"].expected(maps, weights, bias, k) == pytest.approx(
            grads[k].mean(), rel=1e-12)
        score = checks.EXERCISES["gap_score"].expected(maps, weights, bias)
        assert score == pytest.approx(captured.scores[0, c].item(), abs=1e-4)  # the model computes in float32


# ---------------------------------------------------------------------------------------------------------------
# the student copy of notebook 02 (`python -m tinycam release`)

# the derivation's answers, as the solution notebook writes them: none may reach the student copy
BOXED = [r"w_k^c \cdot \frac{1}{Z}", r"Z \cdot \frac{w_k^c}{Z}", r"\frac{\mathrm{ReLU}(M_c)}{Z}",
         "is CAM with a ReLU, divided by", "return weights[k] / len(maps[k])",
         "return len(maps[k]) * (weights[k] / len(maps[k]))", "The class weight that CAM reads is the sum",
         "contains neither the pixel"]


def _notebook(folder):
    return nbformat.read(ROOT / "notebooks" / folder / "02_cam.ipynb", as_version=4)


def test_the_student_copy_keeps_none_of_the_derivations_answers():
    solution = "".join(c.source + "\n" for c in _notebook("").cells)
    student_nb = _notebook("student")
    student = "".join(c.source + "\n" for c in student_nb.cells)
    for text in BOXED:
        assert text in solution, f"{text!r} is not in the solution notebook: update BOXED"
        assert text not in student, f"{text!r} is in the student copy"
    for name in DERIVATION:  # the docstrings say what the function takes and returns, not the formula
        (cell,) = [c for c in student_nb.cells if c.cell_type == "code" and f"def {name}(" in c.source]
        assert "raise NotImplementedError()" in cell.source
        assert not re.search(r"w_k|/ *Z|\bZ *[*·]|\bweights\[|\blen\(|=", cell.source), cell.source


@pytest.mark.parametrize("name", DERIVATION)
def test_the_student_copy_says_not_done_yet_for_each_step(name, capsys):
    (cell,) = [c for c in _notebook("student").cells if c.cell_type == "code" and f"def {name}(" in c.source]
    namespace: dict = {"np": np}
    exec(cell.source, namespace)
    with pytest.raises(checks.NotDoneYet) as failure:
        getattr(checks, name)(namespace[name])
    assert failure.value._render_traceback_() == [f"… {name}: not done yet — replace `raise NotImplementedError()` "
                                                  "with your answer and run the cell"]
    assert capsys.readouterr().out == ""


def test_the_written_questions_are_answer_cells_with_model_answers_in_the_solution_only():
    from tinycam.course.grading.written import written_answers

    solution, student = written_answers(_notebook("")), written_answers(_notebook("student"))
    assert len(solution) == len(student) >= 2
    for given, blank in zip(solution, student):
        assert given["question"] == blank["question"] and re.fullmatch(r"\*\*.+\*\*", given["question"])
        assert len(given["answer"]) > 200 and blank["answer"] == ""


globals().update(check_tests("02", CORRECT, WRONG))
