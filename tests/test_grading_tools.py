"""The instructor's tools around the grader: arguments checked before any work, the CSV written whole or not at all,
notes and flags in every output, the text report as each notebook is done, and `release` deleting nothing it cannot
replace. Tiny notebooks built here; one command-line run starts kernels (two notebooks), the rest runs none."""

import ast
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tinycam.course import grading, release
from tinycam.course.grading import cli, flags, report
from tinycam.course.grading.results import ExerciseResult, NotebookResult

ROOT = Path(__file__).resolve().parent.parent


def _notebook(*cells):
    """A notebook of (source, tags) code cells; a plain string is an untagged cell."""
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}))
    return nb


def _write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def no_grading(monkeypatch):
    """Fail the test if the command line gets as far as grading (a kernel would start)."""
    def refuse(*args, **kwargs):
        raise AssertionError("grading started despite an argument error")
    monkeypatch.setattr(cli, "grade", refuse)


# ---------------------------------------------------------------------------------------------------------------
# arguments: one line, exit 2, before any work


@pytest.mark.parametrize("arguments, message", [
    (["--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
    (["--timeout", "inf"], "--timeout must be a positive number of seconds, got inf"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
    (["--timeout", "-3"], "--timeout must be a positive number of seconds, got -3"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--jobs", "-1"], "--jobs must be at least 1, got -1"),
    (["--csv", "{tmp}/missing/grades.csv"], "--csv {tmp}/missing/grades.csv: there is no folder {tmp}/missing"),
    (["--csv", "{tmp}"], "--csv {tmp} is a folder; name a file, e.g. {tmp}/grades.csv"),
    (["--csv", "{tmp}/01_gradcam_by_hand.ipynb"], "--csv {tmp}/01_gradcam_by_hand.ipynb is one of the notebooks to grade"),
    (["{tmp}/01_gradcam_by_hand.py"], "{tmp}/01_gradcam_by_hand.py is the jupytext twin of a notebook; "
                                      "grade {tmp}/01_gradcam_by_hand.ipynb"),
    (["{tmp}/homework.py"], "{tmp}/homework.py is a Python file, not a notebook; grade the .ipynb notebook"),
])
def test_an_argument_error_is_one_line_and_exit_2_before_any_grading(tmp_path, capsys, no_grading, arguments,
                                                                      message):
    _write(_notebook("x = 1"), tmp_path / "01_gradcam_by_hand.ipynb")
    (tmp_path / "01_gradcam_by_hand.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "homework.py").write_text("x = 1\n", encoding="utf-8")
    argv = [str(tmp_path / "01_gradcam_by_hand.ipynb")] + [a.format(tmp=tmp_path) for a in arguments]
    with pytest.raises(SystemExit) as exit_:
        grading.main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().split("\n")[-1] == "python -m tinycam grade: error: " + message.format(tmp=tmp_path)


def test_a_bad_csv_folder_stops_the_command_before_a_kernel_starts(tmp_path):
    notebook = _write(_notebook("import time\ntime.sleep(60)"), tmp_path / "01_gradcam_by_hand.ipynb")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "tinycam", "grade", str(notebook), "--csv",
                          str(tmp_path / "nope" / "grades.csv")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    assert run.stderr.strip().split("\n")[-1].endswith(f"there is no folder {tmp_path / 'nope'}")
    assert time.perf_counter() - start < 60  # the notebook, which sleeps a minute, never ran


# ---------------------------------------------------------------------------------------------------------------
# the CSV: whole or not at all


def _results():
    alice = NotebookResult("alice/01_gradcam_by_hand.ipynb", notes=["cells that raised: the cell starting `x = 1`"],
                           exercises=[ExerciseResult("gradcam_weights", 2, 2, True, "correct on every hidden case"),
                                      ExerciseResult("gradcam_map", 0, 2, False, "not done yet")],
                           flags=[flags.Flag("gradcam_weights", "`gradcam_weights` reaches for the course's code"),
                                  flags.Flag("", "the cell starting `import gc` reaches for the machinery")])
    missing = NotebookResult("bob/01_gradcam_by_hand.ipynb", error="no such file")
    return [alice, missing]


def test_the_csv_is_replaced_whole_and_a_failure_midway_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "grades.csv"
    target.write_text("the old grades\n", encoding="utf-8")
    os.chmod(target, 0o640)

    def half(results, file):
        file.write("notebook,exercise\nalice,")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(report, "write_csv", half)
        with pytest.raises(OSError, match="disk full"):
            report.write_csv_file(_results(), target)
    assert target.read_text(encoding="utf-8") == "the old grades\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]  # no temporary file left behind

    report.write_csv_file(_results(), target)
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"] and target.stat().st_mode & 0o777 == 0o640
    assert [(r["exercise"], r["points"]) for r in rows] == [("gradcam_weights", "2"), ("gradcam_map", "0"), ("", "0")]
    assert rows[0]["notes"] == rows[1]["notes"] == "cells that raised: the cell starting `x = 1`"
    assert rows[0]["flags"] == ("`gradcam_weights` reaches for the course's code | "
                                "the cell starting `import gc` reaches for the machinery")
    assert rows[1]["flags"] == "the cell starting `import gc` reaches for the machinery"


def test_a_csv_that_cannot_be_written_keeps_the_report_and_exits_1(tmp_path, monkeypatch, capsys):
    target = tmp_path / "grades.csv"
    target.write_text("the old grades\n", encoding="utf-8")
    monkeypatch.setattr(cli, "grade", lambda paths, timeout, jobs, on_done: [on_done(r) or r for r in _results()[:1]])

    def broken(results, file):
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_csv", broken)
    assert grading.main(["alice/01_gradcam_by_hand.ipynb", "--csv", str(target)]) == 1
    out, err = capsys.readouterr()
    assert "✓ gradcam_weights" in out and f"could not write {target} (disk full)" in err
    assert target.read_text(encoding="utf-8") == "the old grades\n"


# ---------------------------------------------------------------------------------------------------------------
# the text report: each notebook as soon as it is done


def test_each_notebook_is_printed_as_soon_as_it_is_graded_then_a_summary(monkeypatch, capsys):
    seen_before_the_second = []

    def fake_grade(paths, timeout, jobs, on_done):
        results = []
        for result in _results():
            if results:
                seen_before_the_second.append(capsys.readouterr().out)
            on_done(result)
            results.append(result)
        return results

    monkeypatch.setattr(cli, "grade", fake_grade)
    assert grading.main(["a.ipynb", "b.ipynb"]) == 1  # bob's file is missing
    rest = capsys.readouterr().out
    first = seen_before_the_second[0]
    assert first.startswith("alice/01_gradcam_by_hand.ipynb\n") and "bob" not in first
    assert "  note: cells that raised: the cell starting `x = 1`" in first
    assert "  flag: `gradcam_weights` reaches for the course's code" in first
    assert rest.startswith("bob/01_gradcam_by_hand.ipynb\n  could not be graded: no such file")
    assert rest.endswith("summary\n  2/4  alice/01_gradcam_by_hand.ipynb  (2 flags)\n"
                         "  0/0  bob/01_gradcam_by_hand.ipynb  could not be graded\n"
                         "  2 notebooks, 1 could not be graded, 1 flagged\n")


# ---------------------------------------------------------------------------------------------------------------
# notes and flags, end to end (two kernels)

GRADCAM_MAP = '''def gradcam_map(weights, acts):
    """ReLU of the weighted sum."""
    {w} = np.asarray(weights, dtype=np.float64)
    {a} = np.asarray(acts, dtype=np.float64)
    {total} = np.zeros({a}.shape[:-3] + {a}.shape[-2:])
    for {k} in range({w}.shape[-1]):
        {total} = {total} + {w}[..., {k}, None, None] * {a}[..., {k}, :, :]
    return np.maximum({total}, 0.0)'''


def _submission(weights_answer, names):
    return _notebook(
        "import numpy as np\nfrom tinycam.course import checks",
        (weights_answer, ["exercise"]),
        ("checks.gradcam_weights(gradcam_weights)", ["check"]),
        "values = [1, 2, 3]\nraise ValueError('a teaching cell that raises')",
        (GRADCAM_MAP.format(**names), ["exercise"]),
        ("def counterfactual_weights(grads):\n    return -np.mean(grads, axis=(-2, -1))", ["exercise"]))


def test_notes_and_flags_are_in_the_json_and_the_csv(tmp_path, capsys):
    alice = _write(_submission("def gradcam_weights(grads):\n    from tinycam import reference\n"
                               "    return reference.gradcam_weights(grads)",
                               dict(w="w", a="a", total="total", k="k")),
                   tmp_path / "alice" / "01_gradcam_by_hand.ipynb")
    bob = _write(_submission("def gradcam_weights(grads):\n    return np.mean(grads, axis=(-2, -1))",
                             dict(w="alphas", a="maps", total="cam", k="channel")),
                 tmp_path / "bob" / "01_gradcam_by_hand.ipynb")
    table = tmp_path / "grades.csv"
    assert grading.main([str(alice), str(bob), "--json", "--csv", str(table), "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "grading" in err and "2/2" in err  # the progress bar, on stderr
    results = {Path(r["notebook"]).parent.name: r for r in json.loads(out)}
    # alice's reference call scores nothing where answers are judged (no course there); her near copy of bob's
    # gradcam_map is flagged and keeps its points: flags change no points
    assert [r["score"] for r in results.values()] == [3, 5]
    raised = "cells that raised: the cell starting `values = [1, 2, 3]` (ValueError)"
    assert results["alice"]["notes"] == results["bob"]["notes"] == [raised]
    assert results["alice"]["flags"] == [
        {"exercise": "gradcam_weights",
         "reason": "`gradcam_weights` reaches for the course's code: `from tinycam import reference`"},
        {"exercise": "gradcam_map", "reason": f"`gradcam_map` is nearly identical to {bob}'s answer"}]
    assert results["bob"]["flags"] == [
        {"exercise": "gradcam_map", "reason": f"`gradcam_map` is nearly identical to {alice}'s answer"}]
    rows = {(Path(r["notebook"]).parent.name, r["exercise"]): r
            for r in csv.DictReader(table.open(encoding="utf-8", newline=""))}
    assert len(rows) == 6 and all(r["notes"] == raised for r in rows.values())
    assert rows["alice", "gradcam_weights"]["flags"].startswith("`gradcam_weights` reaches for the course's code")
    assert rows["bob", "gradcam_map"]["flags"] == f"`gradcam_map` is nearly identical to {alice}'s answer"
    assert rows["bob", "gradcam_weights"]["flags"] == rows["bob", "counterfactual_weights"]["flags"] == ""


# ---------------------------------------------------------------------------------------------------------------
# flags, from the source alone


class _Rename(ast.NodeTransformer):
    """Every argument and local name renamed, docstring and annotations dropped: a disguised copy."""

    def visit_FunctionDef(self, node):
        node.returns, node.decorator_list = None, []
        node.body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        return ast.arg(arg="my_" + node.arg)

    def visit_Name(self, node):
        return ast.Name(id="my_" + node.id if node.id not in ("np", "range") else node.id, ctx=node.ctx)


def test_a_renamed_copy_of_the_reference_is_flagged():
    source = (ROOT / "tinycam" / "conv.py").read_text(encoding="utf-8")
    conv2d = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "conv2d")
    disguised = _Rename().visit(conv2d)
    disguised.name = "conv2d"
    nb = _notebook("import numpy as np", (ast.unparse(ast.fix_missing_locations(disguised)), ["exercise"]))
    found, _ = flags.notebook_flags(nb)
    assert found == [flags.Flag("conv2d", "`conv2d` is nearly identical to `conv2d` in tinycam/conv.py")]


def test_reaching_for_the_interpreters_machinery_is_flagged_in_any_cell():
    nb = _notebook(
        "import numpy as np",
        "import sys\nanswer = sys.modules['tinycam.course.checks']",
        "import os\nos._exit(0)",
        ("def gradcam_weights(grads):\n    import importlib\n    f = sys._getframe(1)\n"
         "    return globals()['x'], open('/proc/self/maps'), gc.get_objects(), inspect.stack()", ["exercise"]))
    reasons = [(f.exercise, f.reason) for f in flags.notebook_flags(nb)[0]]
    assert reasons == [
        ("", "the cell starting `import sys` reaches for the interpreter's machinery: `sys.modules`"),
        ("", "the cell starting `import os` reaches for the interpreter's machinery: `os._exit`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `import importlib`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `sys._getframe`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `globals`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `'/proc/self/maps'`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `gc.get_objects`"),
        ("gradcam_weights", "`gradcam_weights` reaches for the interpreter's machinery: `inspect.stack`")]


def test_a_shared_answer_is_one_flag_per_notebook_naming_the_others(tmp_path):
    names = [dict(w=f"w{i}", a=f"a{i}", total=f"t{i}", k=f"k{i}") for i in range(3)]
    paths = [_write(_notebook((GRADCAM_MAP.format(**n), ["exercise"])), tmp_path / f"s{i}.ipynb")
             for i, n in enumerate(names)]
    found = flags.flag_notebooks(paths)
    assert found[str(paths[0])] == [flags.Flag("gradcam_map", "`gradcam_map` is nearly identical to the answers of "
                                                              f"2 other notebooks: {paths[1]}, {paths[2]}")]
    assert all(len(found[str(p)]) == 1 for p in paths)


def test_the_course_notebooks_and_their_student_copies_get_no_flags():
    solutions = release.solution_notebooks(ROOT / "notebooks")
    paths = solutions + sorted((ROOT / "notebooks" / "student").glob("*.ipynb"))
    assert len(solutions) >= 7 and len(paths) == 2 * len(solutions)  # 00 to 06, each with its student copy
    assert flags.flag_notebooks(paths) == {str(p): [] for p in paths}


def test_cells_are_named_the_way_a_student_finds_them():
    nb = _notebook(("def gradcam_map(weights, acts):\n    pass", ["exercise"]),
                   ("checks.gradcam_map(gradcam_map)", ["check"]),
                   ('reflective_mode = "symmetric"', ["exercise"]),
                   "%matplotlib inline\n\nfig, axes = plt.subplots(1, 3, figsize=(12, 4))  # the three maps side by side",
                   "")
    assert [flags.cell_label(nb, i) for i in range(5)] == [
        "the exercise cell of `gradcam_map`", "the check cell of `gradcam_map`",
        "the exercise cell of `reflective_mode`", "the cell starting `%matplotlib inline`", "the empty cell 5"]
    nb.cells[3].source = "fig, axes = plt.subplots(1, 3, figsize=(12, 4))  # the three maps side by side"
    assert flags.cell_label(nb, 3) == "the cell starting `fig, axes = plt.subplots(1, 3, figsize=(12, 4))…`"


# ---------------------------------------------------------------------------------------------------------------
# release: nothing deleted that it cannot replace


def _solution(path):
    return _write(_notebook(("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", ["exercise"])),
                  path)


@pytest.mark.parametrize("arguments, message", [
    (["--source", "{tmp}/nowhere"], "--source {tmp}/nowhere: no such folder"),
    (["--source", "{tmp}/src/01_x.ipynb"], "--source {tmp}/src/01_x.ipynb: not a folder"),
    (["--out", "{tmp}/src/01_x.ipynb"], "--out {tmp}/src/01_x.ipynb: not a folder"),
    (["--out", "{tmp}/src/."], "--out {tmp}/src is the --source folder"),
])
def test_release_argument_errors_exit_2_and_touch_nothing(tmp_path, capsys, arguments, message):
    _solution(tmp_path / "src" / "01_x.ipynb")
    before = sorted(tmp_path.rglob("*"))
    argv = ["--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")] + [a.format(tmp=tmp_path)
                                                                                    for a in arguments]
    with pytest.raises(SystemExit) as exit_:
        release.main(argv)
    assert exit_.value.code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err.strip().split("\n")[-1]
    assert sorted(tmp_path.rglob("*")) == before


def test_release_removes_only_its_own_stale_copies_and_only_with_solutions_at_hand(tmp_path):
    source = tmp_path / "notebooks"
    _solution(source / "01_x.ipynb")
    _solution(source / "02_y.ipynb")
    out = source / "student"  # inside the source folder, as by default
    assert release.main(["--source", str(source), "--out", str(out)]) == 0
    renamed = out / "alice_01_x.ipynb"  # a student copy under another name: not the release's to remove
    renamed.write_bytes((out / "01_x.ipynb").read_bytes())
    (source / "02_y.ipynb").unlink()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert release.main(["--source", str(empty), "--out", str(out)]) == 1  # no solutions: nothing removed
    assert sorted(p.name for p in out.iterdir()) == ["01_x.ipynb", "02_y.ipynb", "alice_01_x.ipynb"]

    assert release.main(["--source", str(source), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_x.ipynb", "alice_01_x.ipynb"]
    assert sorted(p.name for p in source.glob("*.ipynb")) == ["01_x.ipynb"]  # the solution left as it was


# ---------------------------------------------------------------------------------------------------------------
# written answers, collected for grading by hand


def _answer_cell(text):
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["answer"]
    return cell


def test_written_answers_are_collected_per_student_into_one_file(tmp_path, capsys):
    question = "**Why does A³ get a small weight?**"
    solution = nbformat.v4.new_notebook()
    solution.cells = [nbformat.v4.new_markdown_cell("## Questions"),
                      _answer_cell(f"{question}\n### BEGIN SOLUTION\nIts gradient is small.\n### END SOLUTION"),
                      _answer_cell("**What does the ReLU remove?**\n### BEGIN SOLUTION\nNegative evidence.\n"
                                   "### END SOLUTION")]
    student = release.student_notebook(solution, "essay.ipynb")
    assert [c.source for c in student.cells[1:]] == [f"{question}\n_Your answer here._",
                                                      "**What does the ReLU remove?**\n_Your answer here._"]
    bob = _write(student, tmp_path / "bob" / "essay.ipynb")  # answered nothing
    student.cells[1].source = f"{question}\nBecause its gradient\nis the smallest."
    del student.cells[2]  # and deleted the second question
    paths = [_write(student, tmp_path / "alice" / "essay.ipynb"), bob]
    out_file = tmp_path / "answers.md"
    assert grading.main([str(p) for p in paths] + ["--json", "--answers", str(out_file)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["answers"] == [{"question": question, "answer": "Because its gradient\nis the smallest."}]
    assert results[1]["answers"] == [{"question": question, "answer": ""},
                                     {"question": "**What does the ReLU remove?**", "answer": ""}]
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("# Written answers\n\n## ") and text.count(f"### {question}") == 2
    assert "> Because its gradient\n> is the smallest.\n" in text and text.count("> _(no answer)_") == 2


@pytest.mark.parametrize("make, problem", [
    (lambda d: d / "missing" / "answers.md", "there is no folder"),
    (lambda d: d, "is a folder; name a file"),
])
def test_a_bad_answers_file_is_refused_before_any_grading(tmp_path, capsys, make, problem):
    with pytest.raises(SystemExit) as stop:
        grading.main([str(tmp_path / "01_gradcam_by_hand.ipynb"), "--answers", str(make(tmp_path))])
    assert stop.value.code == 2 and problem in capsys.readouterr().err
