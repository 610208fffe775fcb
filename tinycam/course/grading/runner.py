"""The judging process: run a notebook's answers, call them on the hidden cases, write the results as JSON.

`python -I -S runner.py JOB` in a fresh, sandboxed process (`judging`), started from a copy of this file placed in
the job's private folder. It runs with the standard library and numpy only (and whatever the answers import), and
without the course: under bubblewrap the package, the course's notebooks and tests, and the batch's other submissions
are not in its file system; without it, `tinycam` is off its import path (`-S`: site-packages are added back by
folder, so an editable install's path hook is not) and refused by an import hook. Nothing of the grader runs in it
but this file, and it holds nothing worth reaching: the expected answers and the judging stay in the grader.

The job (JSON) gives `units`, the sources of the top-level statements to execute in order in one namespace (`answers`:
the answers' cells and the plain imports they use; a statement that fails is skipped), `site`, the folders to put on
the import path, and `exercises`: [name, is_value, cases file, number of cases]. For each case it writes
`NAME.INDEX.json` ({"status": ...}) in its folder, and before each call the case's name to `progress`, which the
grader watches for a case that runs past its timeout.
"""

import json
import os
import pickle
import sys

try:
    import numpy
except ImportError:  # run as the judging process (-S): imported in main(), once the import path is set
    numpy = None  # type: ignore[assignment]

BLOCKED = ("tinycam",)  # the course, refused however the import path is set
MAX_NUMBERS = 1_000_000  # the largest array sent back (the course's largest answer has 2,048 numbers)


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
    if isinstance(x, numpy.floating) and x.dtype != numpy.float64:  # a float32 scalar keeps its dtype: 0-d array
        x = numpy.asarray(x)
    elif isinstance(x, (float, numpy.floating)):
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
        if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor (bfloat16, which NumPy lacks: float32)
            x = x.detach().cpu()
            x = (x.float() if str(getattr(x, "dtype", "")) == "torch.bfloat16" else x).numpy()
        elif hasattr(x, "__array__"):
            x = numpy.asarray(x)
    if isinstance(x, numpy.ndarray):
        if x.size > MAX_NUMBERS:
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


def call(namespace, name, is_value, args):
    """{"status": "ok", "value": encode(answer)} for `namespace[name](*args)` (a value exercise: its value), or
    {"status": "missing" | "not_done" | "not_callable" | "raised", ...}."""
    if name not in namespace:
        return {"status": "missing"}
    if is_value:
        got = namespace[name]
    elif not callable(namespace[name]):
        return {"status": "not_callable", "type": type(namespace[name]).__name__}
    else:
        try:
            got = namespace[name](*args)
        except NotImplementedError:
            return {"status": "not_done"}
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # SystemExit too: an answer calling exit() failed, nothing more
            try:
                text = str(error)[:300]
            except BaseException:
                text = ""
            return {"status": "raised", "error": type(error).__name__ + (": " + text if text else "")}
    try:
        return {"status": "ok", "value": encode(got)}
    except BaseException as error:
        return {"status": "raised", "error": f"its result could not be read: {type(error).__name__}"}


class _Refuse:
    """An import hook refusing the course's modules."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}: answers are judged without the course's code")
        return None


def execute(units, namespace):
    """Execute each unit (one statement's source) in `namespace`, skipping those that fail."""
    for unit in units:
        try:
            exec(compile(unit, "<answer>", "exec"), namespace)
        except KeyboardInterrupt:
            raise
        except BaseException:  # a statement needing the notebook (its kernel, its data, the course): skipped
            pass


def _write(path, text, open_=open):
    """Write a new file `path` (a link or file the answers left under that name is removed first, not followed)."""
    try:
        os.remove(path)
    except OSError:
        pass
    with open_(path, "x", encoding="utf-8") as file:
        file.write(text)


def main(job_path):
    with open(job_path, encoding="utf-8") as file:
        job = json.load(file)
    sys.path.extend(job["site"])
    global numpy
    import numpy

    sys.meta_path.insert(0, _Refuse)
    dumps, write, load = json.dumps, _write, pickle.load  # taken before the answers run
    namespace = {"__name__": "__main__"}
    execute(job["units"], namespace)
    for name, is_value, cases_path, count in job["exercises"]:
        with open(cases_path, "rb") as file:
            cases = load(file)
        for index in range(count):
            write("progress", f"{name} {index}")
            result = call(namespace, name, is_value, () if is_value else cases[index])
            try:
                text = dumps(result)
            except BaseException:
                text = '{"status": "raised", "error": "its result could not be written"}'
            write(f"{name}.{index}.json", text)
            if result["status"] in ("missing", "not_done", "not_callable"):
                break  # the same for every case


if __name__ == "__main__":
    main(sys.argv[1])
