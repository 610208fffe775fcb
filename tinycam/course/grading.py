"""`python -m tinycam grade NOTEBOOK... [--json] [--csv FILE] [--timeout SECONDS] [--jobs N]`: grade notebooks.

Each notebook is executed, as an in-memory copy (the file is only read), in a fresh kernel of this environment's
Python, in the notebook's folder, with a per-cell timeout: a cell that runs too long is interrupted and the next
cell runs; a cell that raises does not stop the notebook either. Then, in the same kernel, every exercise of that
notebook (`Exercise.notebook` == the file's stem; a renamed student copy is recognised by its metadata) is graded on
**hidden cases**:

- the grader draws the cases in its own process, `exercise.cases(seed)` with a seed derived from a secret drawn
  afresh for each run (never printed, never the seed the notebook's checks use);
- it sends their arguments to the kernel (a pickle file in a private temporary folder), calls the student's object
  there (the function named like the exercise; for a value exercise, the variable's value) once per case, under the
  same per-cell timeout, and brings the result back as JSON (NumPy arrays and plain Python values only: nothing the
  notebook produces is ever unpickled or executed by the grader);
- it judges each result with `exercise.judge`, in its own process.

So redefining `checks` inside the notebook changes nothing, and an answer hard-coded to the notebook's example
fails the random cases. Points are all or nothing per exercise. A wrong answer is a score, not a failure: the exit
status is 0 when every notebook could be graded, 1 when a file is missing or is not a notebook (the others are still
graded and reported), 2 for a usage error.
"""

import argparse
import csv
import hashlib
import io
import json
import logging
import pickle
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT = 60.0
NOT_DONE = "not done yet"
KERNEL_NAME = "tinycam-grader-python"  # resolved to this environment's Python below, whatever kernels are installed
_TIMEOUT_ENAME = "TinycamCellTimeout"
_RUNNER_MODULE = "_tinycam_grader_"

# The code the grader runs in the kernel, after the notebook. It is executed as a module of its own (registered in
# sys.modules under _RUNNER_MODULE), not in the notebook's namespace, so that whatever the notebook did to its globals
# (`list = [1, 2]`, `np = None`, `json = 3`, ...) cannot break it. run() finds the student's object in the namespace
# of the cell calling it, calls it on one case and writes a JSON description of the result: plain values only.
_RUNNER = r'''
import json
import pickle
import sys

import numpy


def encode(x, depth=0):
    if depth > 32:
        raise ValueError("nested more than 32 levels deep")
    if x is None:
        return ["none"]
    if isinstance(x, (bool, numpy.bool_)):
        return ["bool", bool(x)]
    if isinstance(x, (int, numpy.integer)):
        return ["int", int(x)]
    if isinstance(x, (float, numpy.floating)):
        return ["float", float(x)]
    if isinstance(x, (complex, numpy.complexfloating)):
        return ["complex", complex(x).real, complex(x).imag]
    if isinstance(x, str):
        return ["str", x]
    if isinstance(x, (list, tuple)):
        return [type(x).__name__ if type(x) in (list, tuple) else "list", [encode(v, depth + 1) for v in x]]
    if isinstance(x, dict):
        return ["dict", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]]
    if not isinstance(x, numpy.ndarray):
        if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
            x = x.detach().cpu().numpy()
        elif hasattr(x, "__array__"):
            x = numpy.asarray(x)
    if isinstance(x, numpy.ndarray):
        if x.size > 10_000_000:
            return ["object", "ndarray", f"an array of shape {x.shape}, too large to grade"]
        if x.dtype.kind in "biuf":
            return ["array", x.dtype.name, list(x.shape), x.ravel().tolist()]
        if x.dtype.kind == "c":
            flat = x.ravel()
            return ["carray", x.dtype.name, list(x.shape), flat.real.tolist(), flat.imag.tolist()]
    try:
        text = repr(x)[:200]
    except BaseException:
        text = "?"
    return ["object", type(x).__name__, text]


def run(cases_path, result_path, name, index, is_value, namespace=None):
    if namespace is None:
        namespace = sys._getframe(1).f_globals  # the notebook's namespace: the calling cell's globals
    result = None
    if name not in namespace:
        result = {"status": "missing"}
    elif is_value:
        got = namespace[name]
    elif not callable(namespace[name]):
        result = {"status": "not_callable", "type": type(namespace[name]).__name__}
    else:
        with open(cases_path, "rb") as file:
            args = pickle.load(file)[index]
        try:
            got = namespace[name](*args)
        except NotImplementedError:
            result = {"status": "not_done"}
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            try:
                text = str(error)[:300]
            except BaseException:
                text = ""
            result = {"status": "raised", "error": type(error).__name__ + (": " + text if text else "")}
    if result is None:  # `got` holds the answer
        try:
            result = {"status": "ok", "value": encode(got)}
        except Exception as error:
            result = {"status": "raised", "error": f"its result could not be read: {error}"}
    with open(result_path, "w", encoding="utf-8") as file:
        json.dump(result, file)
'''


# ---------------------------------------------------------------------------------------------------------------
# results


@dataclass
class ExerciseResult:
    name: str
    points: int
    max_points: int
    passed: bool
    message: str

    def as_dict(self):
        return {"name": self.name, "points": self.points, "max_points": self.max_points, "passed": self.passed,
                "message": self.message}


@dataclass
class NotebookResult:
    notebook: str  # the path as given on the command line
    exercises: list = field(default_factory=list)
    error: str = None  # set when the notebook could not be graded (missing file, not a notebook, ...)
    notes: list = field(default_factory=list)  # what happened while the notebook ran (cells that raised, timeouts)
    seconds: float = 0.0

    @property
    def score(self):
        return sum(e.points for e in self.exercises)

    @property
    def max_score(self):
        return sum(e.max_points for e in self.exercises)

    def as_dict(self):
        return {"notebook": self.notebook, "score": self.score, "max_score": self.max_score,
                "exercises": [e.as_dict() for e in self.exercises], "error": self.error}


def _passed(exercise):
    return ExerciseResult(exercise.name, exercise.points, exercise.points, True, "correct on every hidden case")


def _failed(exercise, message):
    return ExerciseResult(exercise.name, 0, exercise.points, False, message)


# ---------------------------------------------------------------------------------------------------------------
# which exercises a notebook holds


def exercises_of(stem):
    from tinycam.course import checks

    return [e for e in checks.EXERCISES.values() if e.notebook == stem]


def _course_stem(path, nb):
    """The course notebook a file is a copy of: its stem, or (renamed copies) the stem the release recorded."""
    stem = Path(path).stem
    if exercises_of(stem):
        return stem
    recorded = nb.get("metadata", {}).get("tinycam", {}).get("student_copy_of")
    if isinstance(recorded, str) and exercises_of(Path(recorded).stem):
        return Path(recorded).stem
    return stem


def _hidden_seed(secret, name):
    """A 63-bit seed for one exercise, derived from the run's secret; never 0, the seed of the notebook's checks."""
    digest = hashlib.sha256(f"{secret}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


# ---------------------------------------------------------------------------------------------------------------
# the kernel


def _kernel_manager_class():
    """An AsyncKernelManager whose KERNEL_NAME is this Python with ipykernel (like nbval's --nbval-current-env)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == KERNEL_NAME:
                spec = ipykernel.kernelspec.get_kernel_dict()
                spec["argv"][0] = sys.executable
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)
            return super().get_kernel_spec(kernel_name)

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self):
            return ThisPythonKernelSpecs(data_dir=self.data_dir)

    return ThisPythonKernelManager


def _quiet_log():
    log = logging.getLogger("tinycam.course.grading.nbclient")  # nbclient logs every timeout and interrupt as an error
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


@dataclass
class _Run:
    """How one cell's execution ended."""

    ok: bool = True
    timed_out: bool = False
    dead: bool = False  # the kernel is gone, or no longer usable (see _Kernel.dead)
    error: str = ""  # "ename: evalue" when the cell raised


class _Kernel:
    """A fresh kernel executing the cells of one in-memory notebook, with a per-cell timeout and interrupts."""

    def __init__(self, nb, folder, timeout):
        from nbclient import NotebookClient

        self.nb, self.timeout = nb, timeout
        self.reply = None
        self.dead = ""  # why the kernel can no longer be used; "" while it can
        self.client = NotebookClient(
            nb, kernel_name=KERNEL_NAME, kernel_manager_class=_kernel_manager_class(),
            timeout_func=lambda cell: self.timeout, interrupt_on_timeout=True, allow_errors=True,
            # on a timeout: interrupt, and report this instead of waiting for the kernel's reply
            error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
            resources={"metadata": {"path": str(folder)}}, shutdown_kernel="immediate", record_timing=False,
            on_cell_executed=self._record, log=_quiet_log(),
        )

    def _record(self, cell, cell_index, execute_reply):
        self.reply = (execute_reply or {}).get("content", {})

    def __enter__(self):
        self._context = self.client.setup_kernel(stderr=subprocess.DEVNULL)
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def run_cell(self, index):
        """Execute the notebook's cell `index`."""
        return self._execute(self.nb.cells[index], index, store_history=True)

    def run_source(self, source, timeout=None, probe=True):
        """Execute `source` in a scratch cell (appended to the notebook for the time of the call)."""
        from nbformat.v4 import new_code_cell

        self.nb.cells.append(new_code_cell(source))
        saved, self.timeout = self.timeout, timeout or self.timeout
        try:
            return self._execute(self.nb.cells[-1], len(self.nb.cells) - 1, store_history=False, probe=probe)
        finally:
            self.timeout = saved
            self.nb.cells.pop()

    def _execute(self, cell, index, store_history, probe=True):
        from nbclient.exceptions import DeadKernelError

        if self.dead:
            return _Run(ok=False, dead=True)
        self.reply = None
        try:
            self.client.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            self.dead = "the kernel died"
            return _Run(ok=False, dead=True)
        reply = self.reply or {}
        if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in reply.get("payload") or []):
            self.dead = "the kernel was asked to exit (exit() or quit())"  # it stops once the reply is sent
            return _Run(ok=False, dead=True)
        if reply.get("status") != "error":
            return _Run()
        if reply.get("ename") == _TIMEOUT_ENAME:
            # interrupted: make sure the interrupt worked before sending anything else
            if not probe or not self.run_source("pass", timeout=max(self.timeout, 5.0), probe=False).ok:
                self.dead = self.dead or "the kernel did not stop when interrupted after a timeout"
            return _Run(ok=False, timed_out=True, dead=bool(self.dead))
        return _Run(ok=False, error=f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}".strip(": "))


# ---------------------------------------------------------------------------------------------------------------
# grading


def _decode(value):
    """Back from the runner's JSON: NumPy arrays and plain Python values only."""
    import numpy as np

    kind = value[0]
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str"):
        return value[1]
    if kind == "complex":
        return complex(value[1], value[2])
    if kind in ("list", "tuple"):
        items = [_decode(v) for v in value[1]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_hashable(_decode(k)): _decode(v) for k, v in value[1]}
    if kind == "array" and np.dtype(value[1]).kind in "biuf":
        return np.array(value[3], dtype=value[1]).reshape(value[2])
    if kind == "carray" and np.dtype(value[1]).kind == "c":
        return (np.array(value[3]) + 1j * np.array(value[4])).astype(value[1]).reshape(value[2])
    type_name = "".join(c for c in str(value[1]) if c.isalnum() or c == "_") or "object"
    text = str(value[2]) if len(value) > 2 else type_name
    return type(type_name, (), {"__repr__": lambda self: text, "__str__": lambda self: text})()


def _hashable(key):
    """A decoded dict key: tuples stay tuples (their items too); anything unhashable becomes its repr."""
    if isinstance(key, (list, tuple)):
        return tuple(_hashable(k) for k in key)
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


def _grade_exercise(kernel, exercise, seed, folder):
    cases = exercise.cases(seed)
    cases_path = folder / f"{exercise.name}.cases.pkl"
    with open(cases_path, "wb") as file:
        pickle.dump([args for _, args in cases], file)
    for index, (label, args) in enumerate(cases):
        result_path = folder / f"{exercise.name}.{index}.json"
        run = kernel.run_source(f"__import__('sys').modules[{_RUNNER_MODULE!r}].run({str(cases_path)!r}, "
                                f"{str(result_path)!r}, {exercise.name!r}, {index}, {exercise.is_value})")
        if run.timed_out:
            return _failed(exercise, f"timed out after {kernel.timeout:g} s on {label}")
        if run.dead:
            return _failed(exercise, f"{kernel.dead} while running it on {label}")
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _failed(exercise, f"could not be run on {label}: {run.error or 'no result came back'}")
        status = result.get("status")
        if status == "missing":
            return _failed(exercise, f"`{exercise.name}` is not defined")
        if status == "not_done":
            return _failed(exercise, NOT_DONE)
        if status == "not_callable":
            return _failed(exercise, f"`{exercise.name}` should be the function you wrote, "
                                     f"but it is a {result.get('type')}")
        if status == "raised":
            return _failed(exercise, f"raised {result.get('error')} on {label}")
        try:
            got = _decode(result["value"])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            return _failed(exercise, f"could not read the result on {label}: {error}")
        if exercise.is_value and got is None:
            return _failed(exercise, NOT_DONE)
        try:
            verdict = exercise.judge(label, args, got)
        except Exception as error:  # a result so odd that the judge itself fails on it
            verdict = (f"wrong on {label}: could not compare the result ({type(error).__name__}: {error})",
                       exercise.hint or "check the type and shape of what you return")
        if verdict is not None:
            problem, hint = verdict
            return _failed(exercise, f"{problem}\nhint: {hint}" if hint else problem)
    return _passed(exercise)


def grade_notebook(path, timeout=DEFAULT_TIMEOUT, secret=None):
    """Grade one notebook file; never raises for a wrong, broken or hostile notebook (see NotebookResult.error)."""
    start = time.perf_counter()
    secret = secrets.randbits(128) if secret is None else secret
    result = NotebookResult(notebook=str(path))
    try:
        _grade_into(result, Path(path), timeout, secret)
    except _NotGraded as reason:
        result.error = str(reason)
        # a file that cannot be graded scores 0 on every exercise its name (or its metadata) announces
        result.exercises = [_failed(e, f"could not be graded: {reason}") for e in reason.exercises]
    result.seconds = time.perf_counter() - start
    return result


class _NotGraded(Exception):
    def __init__(self, message, exercises=()):
        super().__init__(message)
        self.exercises = list(exercises)


def _grade_into(result, path, timeout, secret):
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

    stem = _course_stem(path, nb)
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
        result.exercises = _run_and_grade(nb, path.resolve().parent, exercises, timeout, secret, result.notes)
    except Exception as error:  # e.g. the kernel could not be started: the grader's problem, not the student's
        raise _NotGraded(f"could not run the notebook ({type(error).__name__}: {error})", exercises) from error


MAX_RESTARTS = 3


def _run_and_grade(nb, folder, exercises, timeout, secret, notes):
    """Execute the notebook, then grade each exercise in the same kernel.

    A cell that kills the kernel (`exit()`, `os._exit`, a crash) or that an interrupt cannot stop is left out and
    the notebook is run again in a fresh kernel, at most MAX_RESTARTS times; an exercise whose hidden case kills the
    kernel scores 0 and the remaining ones are graded in a fresh kernel too.
    """
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.get("cell_type") == "code"]
    graded, pending, left_out, reported = [], list(exercises), [], False
    for _ in range(MAX_RESTARTS + 1):
        with tempfile.TemporaryDirectory(prefix="tinycam-grade-") as tmp, _Kernel(nb, folder, timeout) as kernel:
            raised, timed_out, died_in = [], [], None
            for index in code_cells:
                if index + 1 in left_out:
                    continue
                run = kernel.run_cell(index)
                if run.dead:
                    died_in = index + 1
                    break
                if run.timed_out:
                    timed_out.append(index + 1)
                elif run.error:
                    raised.append(f"{index + 1} ({run.error.split(':')[0]})")
            if died_in is not None:
                notes.append(f"{kernel.dead} in cell {died_in}: the notebook was run again without that cell")
                left_out.append(died_in)
                continue
            kernel.run_source(f"__import__('builtins').exec({_RUNNER!r}, __import__('sys').modules.setdefault("
                              f"{_RUNNER_MODULE!r}, __import__('types').ModuleType({_RUNNER_MODULE!r})).__dict__)")
            while pending and not kernel.dead:
                exercise = pending.pop(0)
                graded.append(_grade_exercise(kernel, exercise, _hidden_seed(secret, exercise.name), Path(tmp)))
            if kernel.dead and pending:
                notes.append(f"{kernel.dead} while `{graded[-1].name}` was graded: "
                             "the notebook was run again for the exercises after it")
        if not reported:  # what happened while the notebook ran, once (a rerun for the grading repeats it)
            reported = True
            if raised:
                notes.append("cells that raised: " + ", ".join(raised))
            if timed_out:
                notes.append(f"cells interrupted after {timeout:g} s: " + ", ".join(map(str, timed_out)))
        if not pending:
            break
    reason = f"not graded: the kernel stopped {MAX_RESTARTS + 1} times"
    return graded + [_failed(exercise, reason) for exercise in pending]


def grade(paths, timeout=DEFAULT_TIMEOUT, jobs=1):
    """Grade notebook files (in parallel processes when jobs > 1), all on the same hidden cases."""
    secret = secrets.randbits(128)
    if jobs <= 1 or len(paths) <= 1:
        return [grade_notebook(p, timeout, secret) for p in paths]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(grade_notebook, paths, [timeout] * len(paths), [secret] * len(paths)))


# ---------------------------------------------------------------------------------------------------------------
# reports


def format_report(results):
    lines = []
    for result in results:
        lines.append(str(result.notebook))
        if result.error:
            lines.append(f"  could not be graded: {result.error}")
        width = max([len(e.name) for e in result.exercises] + [5])
        for e in result.exercises:
            score = f"{e.points}/{e.max_points}"
            head = f"  {'✓' if e.passed else '✗'} {e.name:<{width}}  {score:>5}  "
            message = "" if e.passed or result.error else e.message
            first, *rest = message.split("\n")
            lines.append((head + first).rstrip())
            lines.extend(" " * len(head) + line for line in rest)
        lines.extend(f"  note: {note}" for note in result.notes)
        total = f"{result.score}/{result.max_score}"
        lines.append(f"  {'total':<{width + 2}}  {total:>5}  ({result.seconds:.1f} s)")
        lines.append("")
    return "\n".join(lines)


def write_csv(results, file):
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(["notebook", "exercise", "points", "max_points", "passed", "message"])
    for result in results:
        if result.error and not result.exercises:
            writer.writerow([result.notebook, "", 0, 0, "false", f"could not be graded: {result.error}"])
        for e in result.exercises:
            writer.writerow([result.notebook, e.name, e.points, e.max_points, "true" if e.passed else "false",
                             e.message])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tinycam grade",
        description="Execute each notebook in a fresh kernel and grade its exercises on hidden cases: points per "
                    "exercise, as a text report, JSON (--json) or CSV (--csv). Exit status 0 when every notebook "
                    "could be graded, 1 when one is missing or unreadable.")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebook files (.ipynb) to grade")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the text report")
    parser.add_argument("--csv", metavar="FILE", type=Path,
                        help="also write one row per notebook and exercise to FILE")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per-cell time limit, for the notebook's cells and for each hidden case "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")

    results = grade(args.notebooks, args.timeout, args.jobs)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1, ensure_ascii=False))
    else:
        print(format_report(results), end="")
    if args.csv:
        buffer = io.StringIO()
        write_csv(results, buffer)
        args.csv.write_text(buffer.getvalue(), encoding="utf-8")
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"grade: {r.notebook}: could not be graded: {r.error}", file=sys.stderr)
    return 1 if failed else 0
