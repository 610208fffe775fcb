"""Grade notebooks on hidden cases: `python -m tinycam grade NOTEBOOK...` (see `loop` for how, `cli` for the
command line).

- `sandbox`: each kernel's private folder, session, resource limits, and bubblewrap when it is installed;
- `kernel`: a fresh kernel of this Python, in a sandbox, running a notebook's cells under a per-cell timeout;
- `runner`: the code run in that kernel to call the student's answer on one case (numpy only, nothing of the grader);
- `cases`: one exercise on its hidden cases, drawn and judged in the grader's process;
- `loop`: a notebook run, its exercises graded, a dead kernel restarted; several notebooks in parallel;
- `flags`: pointers for the instructor read from a submission's source (what it reaches for, near copies); cell names;
- `results`, `report`: the grades, and the grades as text, CSV or JSON (a file written whole or not at all);
- `cli`: the command line, `main(argv)`.

At the top, these modules import only the standard library, each other and (`runner`) numpy: the kernel imports
this package to reach `runner`, so checks, nbformat, nbclient and jupyter_client are imported where they are used.
"""

from tinycam.course.grading.cases import NOT_DONE, decode, grade_exercise, hidden_seed
from tinycam.course.grading.cli import main
from tinycam.course.grading.flags import Flag, flag_notebooks
from tinycam.course.grading.kernel import KERNEL_NAME
from tinycam.course.grading.loop import DEFAULT_TIMEOUT, MAX_RESTARTS, course_stem, exercises_of, grade, grade_notebook
from tinycam.course.grading.report import format_json, format_report, write_csv, write_csv_file
from tinycam.course.grading.results import ExerciseResult, NotebookResult

__all__ = ["DEFAULT_TIMEOUT", "KERNEL_NAME", "MAX_RESTARTS", "NOT_DONE", "ExerciseResult", "Flag", "NotebookResult",
           "course_stem", "decode", "exercises_of", "flag_notebooks", "format_json", "format_report", "grade",
           "grade_exercise", "grade_notebook", "hidden_seed", "main", "write_csv", "write_csv_file"]
