"""Judge a notebook's answers on hidden cases, in a fresh process that cannot reach the course.

The grader draws each exercise's cases (`exercise.cases(seed)`, the seed derived from the run's secret), writes their
arguments to pickle files in a private sandbox folder together with a copy of `runner.py` and a job, and starts
`python -I -S runner.py job.json` there (`sandbox.Sandbox`: its own session, limits, nobody's uid for a root grader,
bubblewrap when it runs, with the course's folders and the batch's submissions hidden). The process runs only the
answers' cells and the plain imports they use (`answers.program`), calls each answer once per case and writes the
results as JSON; the grader reads them back as plain values (nothing the process writes is unpickled or executed)
and judges them in its own process (`cases.verdict`).

A case that runs past the per-case timeout, or a process that dies, costs that exercise; the process is started
again for the exercises after it, at most MAX_STARTS times, all within the judging budget.
"""

import json
import os
import pickle
import site
import subprocess
import sys
import time
from pathlib import Path

from tinycam.course.grading import sandbox
from tinycam.course.grading.answers import program
from tinycam.course.grading.cases import hidden_seed, verdict
from tinycam.course.grading.results import failed, passed

MAX_STARTS = 4
RESULT_SIZE = 32 << 20  # the largest result file read back (runner.MAX_NUMBERS numbers as JSON, with room)
POLL = 0.02  # seconds between looks at the process


def _checkout():
    """The package's folder and its data's, and the checkout holding them (None for an installed package)."""
    import tinycam

    package = Path(tinycam.__file__).resolve().parent
    root = package.parent if (package.parent / "pyproject.toml").exists() else None
    return [str(package), str(Path(tinycam.DATA_DIR).resolve())], root


def package_folders():
    """The package and its data: what the kernel running a submission's notebook needs to see."""
    return _checkout()[0]


def course_folders():
    """The folders the judging process must not see: the package (and its data), and, for a checkout, the whole
    checkout (its notebooks with their solutions, its tests)."""
    package, root = _checkout()
    return sorted({*package, *([str(root)] if root else [])})


def answer_folders():
    """The folders of a checkout holding the course's answers (its notebooks, tests and history): hidden from the
    kernel that runs a submission's notebook, which needs the package itself."""
    _, root = _checkout()
    return [] if root is None else [str(root / n) for n in ("notebooks", "tests", ".git") if (root / n).exists()]


def judge(nb, exercises, timeout, secret, hidden=(), deadline=None, notes=None):
    """Grade `exercises` (`checks.Exercise`) on the answers of notebook `nb`: a list of ExerciseResult, in order.

    `hidden`: more folders the process must not see (the batch's submissions). `deadline`: a `time.monotonic()`
    past which the exercises left are not graded. `notes` (a list) receives what the grader noticed."""
    notes = [] if notes is None else notes
    units = program(nb, [e.name for e in exercises])
    cases = {e.name: e.cases(hidden_seed(secret, e.name)) for e in exercises}
    results, pending = {}, list(exercises)
    cpu_seconds = (timeout * (1 + sum(len(c) for c in cases.values())) + 10) * max(1, os.cpu_count() or 1)
    for _ in range(MAX_STARTS):
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        with sandbox.Sandbox(None, cpu_seconds, hidden=[*course_folders(), *hidden]) as box:
            stopped = _run(box, units, pending, cases, timeout, deadline)
            if box.over_quota:
                notes.append(f"the answers wrote more than {sandbox.FOLDER_QUOTA >> 20} MiB in their folder: the "
                             "judging process was stopped")
            for exercise in list(pending):
                result = _read(box, exercise, cases[exercise.name], stopped, timeout)
                if result is None:
                    break  # not reached: this exercise and those after it go to a fresh process
                results[exercise.name] = result
                pending.remove(exercise)
        if stopped is not None and stopped[0] is None and stopped[1] != "budget":  # in the answers' cells
            notes.append(f"the answers' cells ran past the {timeout:g} s timeout in the judging process"
                         if stopped[1] == "timeout" else "the answers' cells stopped the judging process")
            break
    out_of_time = deadline is not None and time.monotonic() >= deadline
    reason = ("not graded: the notebook used up its time budget" if out_of_time
              else "not graded: the answers' cells stopped the judging process")
    return [results.get(e.name) or failed(e, reason) for e in exercises]


def _run(box, units, exercises, cases, timeout, deadline):
    """Run the judging process for `exercises` in `box`; None when it finished, else (the case it was on, as
    (name, index), or None before the first case; "timeout", "budget" or "died")."""
    for exercise in exercises:
        box.write(f"{exercise.name}.cases.pkl", pickle.dumps([args for _, args in cases[exercise.name]]))
    job = {"units": units, "site": _site_folders(),
           "exercises": [[e.name, e.is_value, f"{e.name}.cases.pkl", len(cases[e.name])] for e in exercises]}
    box.write("job.json", json.dumps(job).encode())
    box.write("runner.py", (Path(__file__).parent / "runner.py").read_bytes())
    argv = box.wrap([sys.executable, "-I", "-S", "runner.py", "job.json"])
    process = subprocess.Popen(argv, start_new_session=True, **box.popen_kwargs())
    box.pid = process.pid
    box.confine()
    on, since = None, time.monotonic()
    while process.poll() is None:
        time.sleep(POLL)
        now = time.monotonic()
        progress = _progress(box)
        if progress != on:
            on, since = progress, now
        out_of_time = deadline is not None and now >= deadline
        if now - since > timeout or out_of_time:
            box.kill()
            process.wait()
            return on, "budget" if out_of_time else "timeout"
    return None if process.returncode == 0 else (on, "died")


def _progress(box):
    try:
        name, index = sandbox.read_limited(box.folder / "progress", 200).decode("utf-8").rsplit(" ", 1)
        return name, int(index)
    except (OSError, ValueError):
        return None


def _read(box, exercise, cases, stopped, timeout):
    """The ExerciseResult of `exercise` from its result files, or None when the process did not get to it."""
    for index, (label, args) in enumerate(cases):
        try:
            result = json.loads(sandbox.read_limited(box.folder / f"{exercise.name}.{index}.json", RESULT_SIZE))
        except (OSError, ValueError):
            if os.path.lexists(box.folder / f"{exercise.name}.{index}.json"):
                return failed(exercise, f"its result on {label} could not be read back (not a plain JSON file of at "
                                        f"most {RESULT_SIZE >> 20} MiB)")
            if stopped is None or stopped[0] != (exercise.name, index) or stopped[1] == "budget":
                return None
            if stopped[1] == "timeout":
                return failed(exercise, f"timed out after {timeout:g} s on {label}")
            return failed(exercise, f"the judging process stopped while running it on {label}")
        problem = verdict(exercise, label, args, result)
        if problem is not None:
            return problem
    return passed(exercise)


def _site_folders():
    """The folders of this environment's packages, for the judging process's import path (it starts with -S)."""
    return [p for p in site.getsitepackages() if os.path.isdir(p)]
