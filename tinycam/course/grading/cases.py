"""One exercise's hidden cases: their seed, and the verdict on what the judging process (`runner`) sent back as plain
values, judged here, in the grader's process."""

import hashlib

from tinycam.course.grading.results import failed

NOT_DONE = "not done yet"


def hidden_seed(secret, name):
    """A 63-bit seed for one exercise, derived from the run's secret; never 0, the seed of the notebook's checks."""
    digest = hashlib.sha256(f"{secret}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


def verdict(exercise, label, args, result):
    """None when the judging process's `result` for one case ({"status": ...}, see `runner.call`) is right, else
    the `failed` ExerciseResult it earns."""
    status = result.get("status") if isinstance(result, dict) else None
    if status == "missing":
        return failed(exercise, f"`{exercise.name}` is not defined")
    if status == "not_done":
        return failed(exercise, NOT_DONE)
    if status == "not_callable":
        return failed(exercise, f"`{exercise.name}` should be the function you wrote, but it is a {result.get('type')}")
    if status == "raised":
        return failed(exercise, f"raised {result.get('error')} on {label}")
    try:
        got = decode(result["value"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return failed(exercise, f"could not read the result on {label}: {error}")
    if exercise.is_value and got is None:
        return failed(exercise, NOT_DONE)
    try:
        problem = exercise.judge(label, args, got)
    except Exception as error:  # a result so odd that the judge itself fails on it
        problem = (f"wrong on {label}: could not compare the result ({type(error).__name__}: {error})",
                   exercise.hint or "check the type and shape of what you return")
    if problem is None:
        return None
    problem, hint = problem
    return failed(exercise, f"{problem}\nhint: {hint}" if hint else problem)


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
