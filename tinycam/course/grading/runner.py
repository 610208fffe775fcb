"""Run in the kernel, after the notebook: call the student's object on one hidden case and write the result as JSON.

The grader imports this module in the notebook's kernel (`__import__('tinycam.course.grading.runner',
fromlist=['run']).run(...)`, see `cases.grade_exercise`). Being a module of its own, not code run in the notebook's
namespace, whatever the notebook did to its globals (`list = [1, 2]`, `np = None`, `json = 3`, ...) cannot break it.
It imports numpy and the standard library only, nothing else of tinycam: the result it writes is plain values
(`encode`), which the grader reads back with `cases.decode`.
"""

import json
import pickle
import sys

import numpy


def encode(x, depth=0):
    """A JSON-able description of `x`: ["kind", ...] with NumPy arrays and plain Python values only."""
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
    """Call `namespace[name]` on case `index` of the pickled cases (a value exercise: take its value) and write
    {"status": ..., ...} as JSON to `result_path`.

    `namespace` defaults to the calling cell's globals: the notebook's.
    """
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
