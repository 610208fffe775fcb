"""Grade notebooks on hidden cases: `python -m tinycam grade NOTEBOOK...` (see `loop` for how, `cli` for the
command line).

- `sandbox`: each kernel's private folder, session, resource limits, and bubblewrap when it is installed;
- `kernel`: a fresh kernel of this Python, in a sandbox, running a notebook's cells under a per-cell timeout;
- `answers`: what of a notebook the judging process runs (the answers' cells and the plain imports they use);
- `runner`: the judging process's script: runs the answers, calls them on the hidden cases (numpy only, no course);
- `judging`: that process driven from the grader: cases drawn, results read back, per-case timeouts, restarts;
- `cases`: the hidden cases' seeds, and the verdict on one case's result, judged in the grader's process;
- `loop`: a notebook run for the notes, then judged; several notebooks in parallel;
- `flags`: pointers for the instructor read from a submission's source (what it reaches for, near copies); cell names;
- `results`, `report`: the grades, and the grades as text, CSV or JSON (a file written whole or not at all);
- `cli`: the command line, `main(argv)`.

At the top, these modules import only the standard library and each other: checks, nbformat, nbclient, IPython and
jupyter_client are imported where they are used. `runner` is never imported by the grader: a copy of its file is run.
"""

from tinycam.course.grading.cases import NOT_DONE, decode, hidden_seed, verdict
from tinycam.course.grading.cli import main
from tinycam.course.grading.flags import Flag, flag_notebooks
from tinycam.course.grading.kernel import KERNEL_NAME
from tinycam.course.grading.loop import DEFAULT_TIMEOUT, MAX_RESTARTS, course_stem, exercises_of, grade, grade_notebook
from tinycam.course.grading.report import format_json, format_report, write_csv, write_csv_file
from tinycam.course.grading.results import ExerciseResult, NotebookResult

__all__ = ["DEFAULT_TIMEOUT", "KERNEL_NAME", "MAX_RESTARTS", "NOT_DONE", "ExerciseResult", "Flag", "NotebookResult",
           "course_stem", "decode", "exercises_of", "flag_notebooks", "format_json", "format_report", "grade",
           "grade_notebook", "hidden_seed", "main", "verdict", "write_csv", "write_csv_file"]
