"""Student copies (`python -m tinycam release`) and the grader (`python -m tinycam grade`).

Notebooks are executed in three shared runs (module-scoped fixtures), two at a time, and kept short to keep this
file fast: the solution notebooks up to their last check cell and the exercise cells of the committed student copies
(nbval runs both kinds whole), plus one whole student copy; seven altered copies of a slimmed notebook 01, through
the command line; and one that sleeps and loops forever, with a short timeout.
"""

import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tinycam.course import checks, grading, release

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = release.solution_notebooks()
STUDENT_DIR = ROOT / "notebooks" / "student"
NB01 = ROOT / "notebooks" / "01_gradcam_by_hand.ipynb"
MARKER = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION\s*$", re.IGNORECASE | re.MULTILINE)


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read(path):
    return nbformat.read(path, as_version=4)


def _solution_lines(source):
    """The non-blank lines strictly between the markers of a cell's source."""
    lines, inside = [], False
    for line in source.split("\n"):
        if MARKER.match(line):
            inside = not inside
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _by_name(result):
    """{exercise name: result} of a NotebookResult, or of one notebook's object in the --json report."""
    if isinstance(result, dict):
        return {e["name"]: e for e in result["exercises"]}
    return {e.name: e for e in result.exercises}


def _points(exercises):
    return {name: e["points"] if isinstance(e, dict) else e.points for name, e in exercises.items()}


def _full_marks(stem):
    return {e.name: e.points for e in grading.exercises_of(stem)}


# ---------------------------------------------------------------------------------------------------------------
# release


def test_there_are_solution_notebooks_with_exercises():
    assert [p.name for p in SOLUTIONS][:2] == ["00_cnn_arithmetic.ipynb", "01_gradcam_by_hand.ipynb"]
    assert all(grading.exercises_of(p.stem) for p in SOLUTIONS[:2])


def test_release_is_deterministic_and_the_committed_copies_are_current(tmp_path):
    before = {p: _sha(p) for p in SOLUTIONS}
    first, second = tmp_path / "first", tmp_path / "second"
    release.release(out_dir=first, log=lambda line: None)
    release.release(out_dir=second, log=lambda line: None)
    assert {p: _sha(p) for p in SOLUTIONS} == before, "release modified a solution notebook"
    names = sorted(p.name for p in SOLUTIONS)
    assert sorted(p.name for p in first.iterdir()) == names == sorted(p.name for p in second.iterdir())
    committed = sorted(p.name for p in STUDENT_DIR.iterdir() if p.is_file())
    assert committed == names, "notebooks/student/ does not hold exactly one copy per solution notebook " \
                               "(and nothing else): run `python -m tinycam release`"
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"release of {name} is not deterministic"
        assert (first / name).read_bytes() == (STUDENT_DIR / name).read_bytes(), \
            f"notebooks/student/{name} is stale: run `python -m tinycam release` and commit the result"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_student_copy_keeps_no_solution_and_keeps_the_teaching_cells(solution):
    nb, student = _read(solution), _read(STUDENT_DIR / solution.name)
    student_text = (STUDENT_DIR / solution.name).read_text(encoding="utf-8")
    assert len(student.cells) == len(nb.cells)
    assert "jupytext" not in student.metadata  # no .py twin for student copies
    regions = 0
    for cell, copy in zip(nb.cells, student.cells):
        assert copy.get("id") == cell.get("id") and copy.cell_type == cell.cell_type
        assert not MARKER.search(copy.source)
        hidden = _solution_lines(cell.source)
        regions += bool(hidden)
        for line in hidden:
            assert line not in copy.source, f"solution line {line!r} survived in {solution.name}"
            if len(line) >= 30:  # distinctive lines appear nowhere else in the student's file either
                assert json.dumps(line)[1:-1] not in student_text, f"solution line {line!r} survived"
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and (hidden or "exercise" in tags or "check" in tags):
            assert copy.outputs == [] and copy.execution_count is None
            assert {"raises-exception", "nbval-ignore-output"} <= set(copy.metadata["tags"])
        elif hidden:  # a written answer or a worked derivation in markdown: only its regions are replaced
            assert release.TEXT_PLACEHOLDER in copy.source and {**copy, "source": ""} == {**cell, "source": ""}
        else:  # teaching cells: outputs, figures and counts kept
            assert copy == cell
    assert bool(regions) == bool(grading.exercises_of(solution.stem)), "answers without registered exercises?"
    for exercise in grading.exercises_of(solution.stem):  # the student still finds the name to define
        pattern = re.compile(rf"^(def {exercise.name}\(|{exercise.name} = None)", re.M)
        assert any(pattern.search(c.source) for c in student.cells if c.cell_type == "code"), exercise.name


def test_regions_become_placeholders_at_the_begin_lines_indentation():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\nz = 2"
    placeholder = "def f(x):\n    y = 1\n    raise NotImplementedError()\n\nz = 2"
    assert release.strip_solutions(code, "nb, cell 1") == (placeholder, 1)
    text = "Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert release.strip_solutions(text, "nb, cell 1", code=False) == ("Why?\n\n_Your answer here._", 1)
    mentioned = "put it between `### BEGIN SOLUTION` and `### END SOLUTION`"  # prose about markers is no marker
    assert release.strip_solutions(mentioned, "nb, cell 1", code=False) == (mentioned, 0)


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n### END SOLUTION", "nested"),
    ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION'"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "has no '### END SOLUTION'"),
])
def test_unpaired_or_nested_markers_are_an_error_naming_notebook_and_cell(tmp_path, source, problem):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook"), nbformat.v4.new_code_cell("import numpy"),
                nbformat.v4.new_code_cell(source)]
    nb.cells[2].id = "badcell1"
    (tmp_path / "src").mkdir()
    nbformat.write(nb, tmp_path / "src" / "07_broken.ipynb")
    with pytest.raises(release.ReleaseError, match=problem) as error:
        release.release(tmp_path / "src", tmp_path / "out", log=lambda line: None)
    assert "07_broken.ipynb, cell 3 (id badcell1)" in str(error.value)
    assert not list((tmp_path / "out").glob("*.ipynb"))  # nothing written
    assert release.main(["--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")]) == 1


def test_release_refuses_to_write_over_the_solutions():
    with pytest.raises(release.ReleaseError, match="refusing"):
        release.release(out_dir=ROOT / "notebooks", log=lambda line: None)


# ---------------------------------------------------------------------------------------------------------------
# grading the course's own notebooks


def _up_to_the_last_check(nb):
    """The notebook without the teaching cells after its last check cell (they grade nothing; nbval runs them)."""
    last = max((i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", [])), default=-1)
    del nb.cells[last + 1:]
    return nb


def _exercise_cells_only(nb):
    nb.cells = [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
    return nb


@pytest.fixture(scope="module")
def course_results(tmp_path_factory):
    """Every solution notebook (up to its last check) and every committed student copy (its exercise cells only),
    graded under their course names, two at a time; plus one whole student copy, checking that grading leaves the
    file as it was. Whole notebooks are nbval's job (both kinds run under it); this keeps the file fast."""
    root = tmp_path_factory.mktemp("course")
    paths = {}
    for solution in SOLUTIONS:
        for kind, folder, shorten in [("solution", ROOT / "notebooks", _up_to_the_last_check),
                                      ("student", STUDENT_DIR, _exercise_cells_only)]:
            paths[kind, solution.stem] = root / kind / solution.name
            paths[kind, solution.stem].parent.mkdir(exist_ok=True)
            if (folder / solution.name).exists():  # a missing student copy is graded as an error
                nbformat.write(shorten(_read(folder / solution.name)), paths[kind, solution.stem])
    paths["whole student copy", NB01.stem] = STUDENT_DIR / NB01.name
    before = _sha(STUDENT_DIR / NB01.name)
    results = grading.grade([str(p) for p in paths.values()], jobs=2)
    assert _sha(STUDENT_DIR / NB01.name) == before, "grading modified the student's file"
    return dict(zip(paths, results))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_every_solution_notebook_gets_full_marks(course_results, solution):
    result = course_results["solution", solution.stem]
    assert result.error is None
    assert _points(_by_name(result)) == _full_marks(solution.stem), grading.format_report([result])
    assert result.score == result.max_score == sum(_full_marks(solution.stem).values())
    assert all(e.passed for e in result.exercises)


@pytest.mark.parametrize("kind, solution", [("student", p) for p in SOLUTIONS] + [("whole student copy", NB01)],
                         ids=lambda x: x if isinstance(x, str) else x.stem)
def test_every_student_copy_gets_zero_not_done_yet(course_results, kind, solution):
    result = course_results[kind, solution.stem]
    assert result.error is None, result.error
    assert result.max_score == sum(_full_marks(solution.stem).values())
    assert [(e.name, e.points, e.passed, e.message) for e in result.exercises] == \
           [(name, 0, False, "not done yet") for name in _full_marks(solution.stem)]


# ---------------------------------------------------------------------------------------------------------------
# altered submissions


def _nb01_slim():
    """Notebook 01 reduced to its imports cell, its exercise and check cells and the markdown: enough for altered
    answers, and twice as fast to run as the whole notebook."""
    nb = _read(NB01)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells)
                if i == first or c.cell_type != "code" or {"exercise", "check"} & set(c.metadata.get("tags", []))]
    return nb


def _answer(nb, name, body):
    """Replace the solution region of the exercise cell defining `name` with `body` (lines at 4 spaces)."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(f"def {name}("))
    body = "\n".join("    " + line for line in body.split("\n"))
    cell.source, count = re.subn(r"### BEGIN SOLUTION\n.*### END SOLUTION", lambda m: body.strip(),
                                 cell.source, flags=re.S)
    assert count == 1


def _insert_after(nb, fragment, source):
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and fragment in c.source)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


# The solution of 01 computes counterfactual_weights with gradcam_weights, so an altered gradcam_weights would also
# sink Exercise 3; these submissions answer Exercise 3 on its own to isolate the mistake under test.
OWN_COUNTERFACTUAL = "return -np.mean(np.asarray(grads, dtype=np.float64), axis=(-2, -1))"


def _sum_instead_of_mean(nb):
    _answer(nb, "gradcam_weights", "return np.sum(grads, axis=(-2, -1))")
    _answer(nb, "counterfactual_weights", OWN_COUNTERFACTUAL)


def _missing_relu(nb):
    _answer(nb, "gradcam_map", "return (np.asarray(weights)[..., :, None, None] * acts).sum(axis=-3)")


def _wrong_sign(nb):
    _answer(nb, "counterfactual_weights", "return np.mean(grads, axis=(-2, -1))")


def _hard_coded(nb):  # the lecture's map: right on the notebook's example, wrong on every other case
    _answer(nb, "gradcam_map", "return np.array([[8.925, 0.0], [16.125, 2.6]])")


def _memorised(nb):  # right on every case the notebook's check can show (seed 0), nothing else
    _answer(nb, "gradcam_weights",
            "seen = {np.asarray(g, dtype=np.float64).tobytes(): np.mean(g, axis=(-2, -1))\n"
            "        for _, (g,) in checks.EXERCISES['gradcam_weights'].cases(0)}\n"
            "return seen.get(np.asarray(grads, dtype=np.float64).tobytes(), np.zeros(np.shape(grads)[:-2]))")
    _answer(nb, "counterfactual_weights", OWN_COUNTERFACTUAL)


def _redefined_checks(nb):  # a wrong answer whose check cell has been made to print ✓
    _insert_after(nb, "import matplotlib", 'checks.gradcam_weights = lambda f: print("✓")\n'
                                           "import tinycam.course.checks\n"
                                           "tinycam.course.checks.gradcam_weights = checks.gradcam_weights\n"
                                           "tinycam.course.checks.EXERCISES.clear()")
    _answer(nb, "gradcam_weights", "return np.mean(grads, axis=(-3, -1))")
    _answer(nb, "counterfactual_weights", OWN_COUNTERFACTUAL)


def _deleted(nb):  # the answer's cell deleted; another answer's cell shadows names the judging process uses
    nb.cells = [c for c in nb.cells if not c.source.startswith("def gradcam_map(")]
    cell = next(c for c in nb.cells if c.source.startswith("def counterfactual_weights("))
    cell.source += "\n\njson = pickle = sys = numpy = list = str = isinstance = open = None"


def _appended(nb):  # the cell that once solved the course: the reference's functions under the answers' names
    nb.cells = [c for c in nb.cells if not c.source.startswith("def gradcam_map(")]
    nb.cells.append(nbformat.v4.new_code_cell("from tinycam import reference\n"
                                              "gradcam_map = lambda weights, acts: reference.localization_map(weights, "
                                              "acts)"))


MUTANTS = {  # name -> (how to alter 01, the exercise that must lose its points, a fragment of the message)
    "sum": (_sum_instead_of_mean, "gradcam_weights", "you summed the gradients"),
    "relu": (_missing_relu, "gradcam_map", "you forgot the ReLU"),
    "sign": (_wrong_sign, "counterfactual_weights", "negate the gradients"),
    "hard_coded": (_hard_coded, "gradcam_map", "wrong on random"),
    "memorised": (_memorised, "gradcam_weights", "name 'checks' is not defined"),  # no course where it is judged
    "redefined_checks": (_redefined_checks, "gradcam_weights", "wrong on"),
    "deleted": (_deleted, "gradcam_map", "`gradcam_map` is not defined"),
    "appended": (_appended, "gradcam_map", "raised NameError: name 'reference' is not defined"),
}


@pytest.fixture(scope="module")
def mutant_run(tmp_path_factory):
    """The altered copies of 01 (each in its own folder, under its course name), graded by the command line."""
    root = tmp_path_factory.mktemp("submissions")
    paths = {}
    for name, (alter, _, _) in MUTANTS.items():
        nb = _nb01_slim()
        alter(nb)
        paths[name] = root / name / NB01.name
        paths[name].parent.mkdir()
        nbformat.write(nb, paths[name])
    before = {p: _sha(p) for p in paths.values()}
    csv_path = root / "grades.csv"
    run = subprocess.run([sys.executable, "-m", "tinycam", "grade", *map(str, paths.values()), "--json",
                          "--csv", str(csv_path), "--jobs", "2"], capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr
    assert {p: _sha(p) for p in paths.values()} == before, "grading modified a submission"
    report = {Path(r["notebook"]).parent.name: r for r in json.loads(run.stdout)}
    with open(csv_path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    return report, rows


@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_mutated_answer_loses_exactly_its_exercises_points(mutant_run, mutant):
    report, _ = mutant_run
    _, exercise, fragment = MUTANTS[mutant]
    result = report[mutant]
    expected = _full_marks("01_gradcam_by_hand")
    expected[exercise] = 0
    assert _points(_by_name(result)) == expected, json.dumps(result, indent=1, ensure_ascii=False)
    assert result["score"] == sum(expected.values()) and result["max_score"] == 5
    assert fragment in _by_name(result)[exercise]["message"]


def test_hard_coding_the_example_fails_on_a_hidden_case_only(mutant_run):
    message = _by_name(mutant_run[0]["hard_coded"])["gradcam_map"]["message"]
    assert message.startswith("wrong on random") and "the lecture example" not in message


def test_json_and_csv_have_the_documented_fields(mutant_run):
    report, rows = mutant_run
    for result in report.values():
        assert set(result) >= {"notebook", "score", "max_score", "exercises"}
        for e in result["exercises"]:
            assert set(e) == {"name", "points", "max_points", "passed", "message"}
            assert isinstance(e["passed"], bool) and e["points"] in (0, e["max_points"])
    assert rows[0] == ["notebook", "exercise", "points", "max_points", "passed", "message", "notes", "flags"]
    from_json = sorted((r["notebook"], e["name"], str(e["points"]), str(e["max_points"]), str(e["passed"]).lower(),
                        e["message"]) for r in report.values() for e in r["exercises"])
    assert sorted(tuple(row[:6]) for row in rows[1:]) == from_json and len(from_json) == 3 * len(MUTANTS)
    assert all(isinstance(r["notes"], list) and isinstance(r["flags"], list) for r in report.values())
    assert {"exercise": "gradcam_weights", "reason": "`gradcam_weights` reaches for the course's code: `checks`"} \
        in report["memorised"]["flags"]  # the answer reads the notebook's own cases out of `checks`


def test_loops_and_sleeps_are_interrupted_and_the_rest_is_graded(tmp_path):
    nb = _nb01_slim()
    _insert_after(nb, "import matplotlib", "import time\ntime.sleep(600)  # a teaching cell that never ends")
    _answer(nb, "gradcam_map", "while True:\n    pass")
    nb.cells = [c for c in nb.cells if "checks.gradcam_map(" not in c.source]  # its check would loop as well
    path = tmp_path / NB01.name
    nbformat.write(nb, path)
    result = grading.grade_notebook(path, timeout=4)  # 8x the slowest cell left; sleep and loop cost 4 s each
    points = _points(_by_name(result))
    assert points == {**_full_marks("01_gradcam_by_hand"), "gradcam_map": 0}, grading.format_report([result])
    assert _by_name(result)["gradcam_map"].message == "timed out after 4 s on the lecture example"
    assert "cells interrupted after 4 s: the cell starting `import time`" in result.notes, result.notes  # the sleep


# ---------------------------------------------------------------------------------------------------------------
# the command line and the small parts


def test_a_missing_or_unreadable_file_is_a_clear_error_and_exit_1(tmp_path, capsys):
    (tmp_path / "01_gradcam_by_hand.ipynb").write_text("{not json", encoding="utf-8")
    missing = tmp_path / "alice" / "00_cnn_arithmetic.ipynb"
    assert grading.main([str(missing), str(tmp_path / "01_gradcam_by_hand.ipynb"), "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report[0]["error"] == "no such file" and report[0]["score"] == 0 and report[0]["max_score"] == 8
    assert report[1]["error"].startswith("not a readable notebook") and report[1]["max_score"] == 5
    assert f"{missing}: could not be graded: no such file" in err


def test_a_renamed_student_copy_is_recognised_and_an_unknown_one_is_an_error(tmp_path):
    copy = _read(STUDENT_DIR / "01_gradcam_by_hand.ipynb")
    assert grading.course_stem(tmp_path / "alice_01 (1).ipynb", copy) == "01_gradcam_by_hand"
    unknown = tmp_path / "homework.ipynb"
    del copy.metadata["tinycam"]
    nbformat.write(copy, unknown)
    result = grading.grade_notebook(unknown)
    assert result.error.startswith("no graded exercises are registered for 'homework'")


def test_hidden_seeds_are_secret_per_run_and_never_the_notebooks_seed():
    seeds = {grading.hidden_seed(secret, name) for secret in range(50) for name in checks.EXERCISES}
    assert 0 not in seeds and len(seeds) == 50 * len(checks.EXERCISES)


def test_results_come_back_from_the_judging_process_as_plain_values():
    """The code of the judging process, run here: what each kind of answer turns into for the judge."""
    import numpy as np

    class Tensor:  # what the runner asks of a torch tensor (torch itself is exercised by notebook 03)
        def __init__(self, array):
            self.array = array

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.array

    from tinycam.course.grading import runner

    answers = {
        "floats": np.array([[1.5, np.nan], [-0.0, np.inf]]), "ints": np.arange(6, dtype=np.int32).reshape(2, 3),
        "flags": np.array([True, False]), "tensor": Tensor(np.full((2, 3), 2.0)),
        "scalar": np.float32(0.25), "number": 7, "text": "symmetric", "nothing": None,
        "nested": [1, (2.5, "a"), {"k": [3]}], "complex": np.array([1 + 2j]), "odd": object(),
    }
    namespace = dict(answers)
    got = {name: grading.decode(json.loads(json.dumps(runner.call(namespace, name, True, ())))["value"])
           for name in answers}
    np.testing.assert_array_equal(got["floats"], answers["floats"])
    assert got["ints"].dtype == np.int32 and got["ints"].shape == (2, 3)
    assert got["flags"].dtype == bool and got["tensor"].dtype == np.float64 and (got["tensor"] == 2).all()
    assert got["scalar"] == 0.25 and got["scalar"].dtype == np.float32  # judged as float32, as the check does
    assert got["number"] == 7 and got["text"] == "symmetric" and got["nothing"] is None
    assert got["nested"] == [1, (2.5, "a"), {"k": [3]}] and got["complex"][0] == 1 + 2j
    assert type(got["odd"]).__name__ == "object" and repr(got["odd"]).startswith("<object object")

    def unfinished():
        raise NotImplementedError()

    def broken():
        return 1 / 0

    def leaves():
        raise SystemExit(3)

    namespace.update(unfinished=unfinished, broken=broken, leaves=leaves, not_a_function=3)
    assert runner.call(namespace, "missing", False, ()) == {"status": "missing"}
    assert runner.call(namespace, "unfinished", False, ()) == {"status": "not_done"}
    assert runner.call(namespace, "broken", False, ()) == {"status": "raised",
                                                             "error": "ZeroDivisionError: division by zero"}
    assert runner.call(namespace, "leaves", False, ()) == {"status": "raised", "error": "SystemExit: 3"}
    assert runner.call(namespace, "not_a_function", False, ()) == {"status": "not_callable", "type": "int"}


def test_the_judging_script_imports_nothing_of_the_course():
    """`runner.py` is copied and run as a script in the judging process: the standard library and numpy only."""
    import ast

    tree = ast.parse((ROOT / "tinycam" / "course" / "grading" / "runner.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"json", "numpy", "os", "pickle", "sys"}, imported


def test_the_judging_process_runs_the_answers_and_the_plain_imports_they_use():
    from tinycam.course.grading.answers import program

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in [
        "import numpy as np\nimport matplotlib.pyplot as plt\nfrom tinycam import reference\nimport torch, math",
        "def helper(x):\n    return inner(x) + math.pi\n\ndef inner(x):\n    return x\n\ntraining = run_for_hours()",
        "%timeit helper(1)\ndef gradcam_weights(grads):\n    raise NotImplementedError()",
        "def gradcam_weights(grads):\n    return np.mean(helper(grads), axis=(-2, -1))\n\nchecks.gradcam_weights("
        "gradcam_weights)",
        "print('a teaching cell')",
    ]]
    assert program(nb, ["gradcam_weights", "absent"]) == [
        "import numpy as np", "import torch, math",  # not matplotlib (unused), never tinycam
        "def helper(x):\n    return inner(x) + math.pi", "def inner(x):\n    return x",  # helpers, not the rest
        "def gradcam_weights(grads):\n    return np.mean(helper(grads), axis=(-2, -1))",  # the last definition
        "checks.gradcam_weights(gradcam_weights)",  # run, and fails harmlessly where it is judged
    ]
