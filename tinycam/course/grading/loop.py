"""Grade notebook files: run each in a sandboxed kernel for the instructor's notes, then judge its answers on
hidden cases in a fresh process that cannot reach the course.

1. The notebook is executed, as an in-memory copy (the file is only read), in a fresh kernel of this environment's
   Python, in a sandbox (`sandbox`: a private temporary folder holding a copy of the file, its own session, resource
   limits, bubblewrap when installed, the course's notebooks and tests and the batch's submissions hidden), with a
   per-cell timeout: a cell that runs too long is interrupted and the next cell runs; a cell that raises does not
   stop the notebook either. What happened (cells that raised, timed out, killed the kernel) goes to the notes; no
   point depends on it.
2. Every exercise of that notebook (`Exercise.notebook` == the file's stem; a renamed student copy is recognised by
   its metadata) is judged on **hidden cases** (`judging`): the grader draws them in its own process, with a seed
   derived from a secret drawn afresh for each run (never printed, never the seed the notebook's checks use); a fresh
   process without the course's code runs only the answers' cells and the plain imports they use, calls each
   answer on each case and writes the results as plain values; the grader judges them with `exercise.judge`.

So redefining `checks`, importing the course's reference, or patching the grader inside the notebook changes
nothing, and an answer hard-coded to the notebook's example fails the random cases. Points are all or nothing per
exercise. Each step has a time budget, BUDGET_FACTOR per-cell timeouts plus BUDGET_SLACK seconds: past it, the cells
left are not run, or the exercises left are not graded.

`tinycam.course.checks` and nbformat are imported when a notebook is graded, not with this module.
"""

import os
import secrets
import time
from pathlib import Path

from tinycam.course.grading import sandbox
from tinycam.course.grading.flags import cell_label, flag_notebooks
from tinycam.course.grading.judging import answer_folders, judge, package_folders
from tinycam.course.grading.kernel import Kernel
from tinycam.course.grading.results import NotebookResult, failed
from tinycam.course.grading.written import written_answers

DEFAULT_TIMEOUT = 60.0
MAX_RESTARTS = 3
BUDGET_FACTOR = 3  # a notebook's time budget: this many per-cell timeouts...
BUDGET_SLACK = 10.0  # ...plus this many seconds (kernel start, imports)


def budget(timeout):
    """A notebook's time budget in seconds, for a per-cell timeout of `timeout` seconds."""
    return BUDGET_FACTOR * timeout + BUDGET_SLACK


def exercises_of(stem):
    """The graded exercises of the course notebook named `stem`."""
    from tinycam.course import checks

    return [e for e in checks.EXERCISES.values() if e.notebook == stem]


def course_stem(path, nb):
    """The course notebook a file is a copy of: its stem, or (renamed copies) the stem the release recorded."""
    stem = Path(path).stem
    if exercises_of(stem):
        return stem
    recorded = nb.get("metadata", {}).get("tinycam", {}).get("student_copy_of")
    if isinstance(recorded, str) and exercises_of(Path(recorded).stem):
        return Path(recorded).stem
    return stem


def grade(paths, timeout=DEFAULT_TIMEOUT, jobs=1, on_done=None):
    """Grade notebook files (in parallel processes when jobs > 1), all on the same hidden cases, and flag them
    (`flags.flag_notebooks`); `on_done(result)` is called for each in order, as soon as it is graded."""
    secret = secrets.randbits(128)
    sandbox.warn_once()
    flags = flag_notebooks(paths)
    hidden = submission_folders(paths)
    if jobs <= 1 or len(paths) <= 1:
        return _collect((grade_notebook(p, timeout, secret, hidden) for p in paths), flags, on_done)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return _collect(pool.map(grade_notebook, paths, [timeout] * len(paths), [secret] * len(paths),
                                 [hidden] * len(paths)), flags, on_done)


def _collect(results, flags, on_done):
    collected = []
    for result in results:
        result.flags = flags.get(result.notebook, [])
        if on_done is not None:
            on_done(result)
        collected.append(result)
    return collected


def submission_folders(paths):
    """The folders holding the notebooks `paths`: no submission's process sees them (under bubblewrap)."""
    return tuple(sorted({str(Path(p).resolve().parent) for p in paths}))


def grade_notebook(path, timeout=DEFAULT_TIMEOUT, secret=None, hidden=None):
    """Grade one notebook file; never raises for a wrong, broken or hostile notebook (see NotebookResult.error).
    `hidden`: the folders its processes must not see (default: the notebook's own folder)."""
    start = time.perf_counter()
    sandbox.warn_once()
    secret = secrets.randbits(128) if secret is None else secret
    result = NotebookResult(notebook=str(path))
    try:
        _grade_into(result, Path(path), timeout, secret, submission_folders([path]) if hidden is None else hidden)
    except _NotGraded as reason:
        result.error = str(reason)
        # a file that cannot be graded scores 0 on every exercise its name (or its metadata) announces
        result.exercises = [failed(e, f"could not be graded: {reason}") for e in reason.exercises]
    result.seconds = time.perf_counter() - start
    return result


class _NotGraded(Exception):
    """Why a file could not be graded, and the exercises it would have been graded on."""

    def __init__(self, message, exercises=()):
        super().__init__(message)
        self.exercises = list(exercises)


def _grade_into(result, path, timeout, secret, hidden):
    """Read the notebook at `path`, find its exercises and fill `result` with their grades and the run's notes."""
    import nbformat

    try:
        nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except FileNotFoundError:
        raise _NotGraded("no such file", exercises_of(path.stem)) from None
    except IsADirectoryError:
        raise _NotGraded("a folder, not a notebook", exercises_of(path.stem)) from None
    except Exception as error:  # unreadable, not UTF-8, not JSON, not a notebook
        raise _NotGraded(f"not a readable notebook ({type(error).__name__}: {str(error)[:200]})",
                         exercises_of(path.stem)) from None

    result.answers = written_answers(nb)
    stem = course_stem(path, nb)
    exercises = exercises_of(stem)
    if not exercises:
        if any("exercise" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
            from tinycam.course import checks

            known = sorted({e.notebook for e in checks.EXERCISES.values()})
            raise _NotGraded(f"no graded exercises are registered for '{stem}': name the file like the course "
                             f"notebook it answers ({', '.join(known)})")
        result.notes.append("this notebook has no graded exercises")
        return

    try:
        result.exercises = _run_and_grade(nb, path, exercises, timeout, secret, result.notes, hidden)
    except Exception as error:  # e.g. the kernel could not be started: the grader's problem, not the student's
        raise _NotGraded(f"could not run the notebook ({type(error).__name__}: {error})", exercises) from error


def _run_and_grade(nb, path, exercises, timeout, secret, notes, hidden=()):
    """Run the notebook (read from `path`) for the instructor's notes, then judge its answers in a fresh process.

    A cell that kills the kernel (`exit()`, `os._exit`, a crash) or that an interrupt cannot stop is left out and
    the notebook is run again in a fresh kernel, at most MAX_RESTARTS times, within the notebook's budget. The
    answers are judged afterwards (`judging.judge`), within a budget of their own of the same size.
    """
    seconds = budget(timeout)
    _run_cells(nb, path, timeout, time.monotonic() + seconds, notes, [*answer_folders(), *hidden])
    return judge(nb, exercises, timeout, secret, hidden, time.monotonic() + seconds, notes)


def _run_cells(nb, path, timeout, deadline, notes, hidden):
    """Execute the notebook's code cells in a sandboxed kernel; what happened goes to `notes`."""
    cpu_seconds = budget(timeout) * max(1, os.cpu_count() or 1) + 10  # a backstop: the deadline stops it first
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.get("cell_type") == "code"]
    left_out: list[int] = []
    raised: list[str] = []
    timed_out: list[str] = []
    not_run: list[str] = []
    for _ in range(MAX_RESTARTS + 1):
        raised, timed_out, not_run, died_in = [], [], [], None  # what the last run saw
        with sandbox.Sandbox(path, cpu_seconds, hidden, package_folders()) as box, \
                Kernel(nb, box, timeout, deadline) as kernel:
            for index in code_cells:
                if index in left_out:
                    continue
                if kernel.out_of_time:
                    not_run.append(cell_label(nb, index))
                    continue
                run = kernel.run_cell(index)
                if run.dead:
                    died_in = index
                    break
                if run.timed_out and not kernel.out_of_time:
                    timed_out.append(cell_label(nb, index))
                elif run.timed_out:
                    not_run.append(cell_label(nb, index))  # cut short by the budget
                elif run.error:
                    raised.append(f"{cell_label(nb, index)} ({run.error.split(':')[0]})")
            out_of_time, over_quota = kernel.out_of_time, box.over_quota
        if over_quota:
            notes.append(f"the notebook wrote more than {sandbox.FOLDER_QUOTA >> 20} MiB in its folder: its kernel "
                         "was stopped")
        if died_in is None:
            break
        notes.append(f"{kernel.dead} in {cell_label(nb, died_in)}: the notebook was run again without it")
        left_out.append(died_in)
        if out_of_time:
            break
    if raised:
        notes.append("cells that raised: " + ", ".join(raised))
    if timed_out:
        notes.append(f"cells interrupted after {timeout:g} s: " + ", ".join(timed_out))
    if not_run:
        notes.append(f"stopped at the notebook's time budget of {budget(timeout):g} s: cells not run or cut short: "
                     + ", ".join(not_run))
