"""Grade one exercise on its hidden cases: draw them here, call the student's object in the kernel (`runner`), read
the result back as plain values and judge it here."""

import hashlib
import json
import pickle

from tinycam.course.grading.results import failed, passed
from tinycam.course.grading.sandbox import read_limited

NOT_DONE = "not done yet"
RESULT_SIZE = 256 << 20  # the largest result file read back (10 million numbers as JSON)
RUNNER_MODULE = f"{__package__}.runner"  # imported by name in the kernel, which runs this same Python environment


def hidden_seed(secret, name):
    """A 63-bit seed for one exercise, derived from the run's secret; never 0, the seed of the notebook's checks."""
    digest = hashlib.sha256(f"{secret}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


def grade_exercise(kernel, exercise, seed, folder):
    """Run `exercise` (a `checks.Exercise`) on `exercise.cases(seed)` in `kernel` (a `kernel.Kernel` that ran the
    notebook), the cases' arguments passed through a pickle file in `folder`: an `ExerciseResult`."""
    cases = exercise.cases(seed)
    cases_path = folder / f"{exercise.name}.cases.pkl"
    with open(cases_path, "xb") as file:  # "x": never through a link a submission left in its folder
        pickle.dump([args for _, args in cases], file)
    for index, (label, args) in enumerate(cases):
        result_path = folder / f"{exercise.name}.{index}.json"
        run = kernel.run_source(f"__import__({RUNNER_MODULE!r}, fromlist=['run']).run({str(cases_path)!r}, "
                                f"{str(result_path)!r}, {exercise.name!r}, {index}, {exercise.is_value})")
        if run.timed_out:
            return failed(exercise, f"timed out after {kernel.timeout:g} s on {label}")
        if run.dead:
            return failed(exercise, f"{kernel.dead} while running it on {label}")
        try:
            result = json.loads(read_limited(result_path, RESULT_SIZE).decode("utf-8"))
        except (OSError, ValueError):
            return failed(exercise, f"could not be run on {label}: {run.error or 'no result came back'}")
        status = result.get("status")
        if status == "missing":
            return failed(exercise, f"`{exercise.name}` is not defined")
        if status == "not_done":
            return failed(exercise, NOT_DONE)
        if status == "not_callable":
            return failed(exercise, f"`{exercise.name}` should be the function you wrote, "
                                    f"but it is a {result.get('type')}")
        if status == "raised":
            return failed(exercise, f"raised {result.get('error')} on {label}")
        try:
            got = decode(result["value"])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            return failed(exercise, f"could not read the result on {label}: {error}")
        if exercise.is_value and got is None:
            return failed(exercise, NOT_DONE)
        try:
            verdict = exercise.judge(label, args, got)
        except Exception as error:  # a result so odd that the judge itself fails on it
            verdict = (f"wrong on {label}: could not compare the result ({type(error).__name__}: {error})",
                       exercise.hint or "check the type and shape of what you return")
        if verdict is not None:
            problem, hint = verdict
            return failed(exercise, f"{problem}\nhint: {hint}" if hint else problem)
    return passed(exercise)


def decode(value):
    """Back from the runner's JSON (`runner.encode`): NumPy arrays and plain Python values only."""
    import numpy as np

    kind = value[0]
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str"):
        return value[1]
    if kind == "complex":
        return complex(value[1], value[2])
    if kind in ("list", "tuple"):
        items = [decode(v) for v in value[1]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_hashable(decode(k)): decode(v) for k, v in value[1]}
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
