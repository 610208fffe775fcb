"""The checks' machinery: an exercise as data (`Exercise`), its known mistakes (`Mistake`), and the ✓/✗/… lines.

An exercise asks the student to write a small function (or give a value). Its check runs the answer on the example
the notebook shows *and* on random cases (seeded; the grader uses seeds the student never sees), compares with the
expected answer, and

- prints one line ``✓ name: ...`` when every case agrees;
- raises `CheckFailed` (an AssertionError) when one does not: two lines, ``✗ name: what was expected, what came
  back`` and ``  hint: ...`` (the hint of the first known mistake the answer reproduces, else the exercise's
  generic hint);
- raises `NotDoneYet` (a NotImplementedError), one line ``… name: not done yet``, while the answer is still the
  placeholder (a function raising NotImplementedError, or None for an exercise whose answer is a value).

Both exceptions render themselves in IPython and Jupyter as exactly those lines, no traceback
(`_render_traceback_`), and still fail the cell (nbval's ``raises-exception`` cells and the grader see an error).
An answer that raises, returns nothing (None) or computes in float32 gets a ✗ line saying so; `Exercise.judge`, which
the grader calls in its own process, judges exactly as the check does.

NumPy only: an exercise whose cases are torch tensors imports torch inside its own functions.
"""

import copy
import linecache
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["CheckFailed", "Exercise", "Mistake", "NotDoneYet", "disagreement", "registry"]

NO_RETURN = "your function returns nothing (did you forget `return`?)"
NO_RETURN_HINT = ("a function gives its result back only through a return statement at its end; printing the result "
                  "or leaving it in a variable gives back nothing")
RAISED_HINT = ("the error comes from your own code: call your function on the notebook's example in a cell of its "
               "own to see where and why")
# the significand's precision of the float dtypes a result may come back in, float64's excluded
_LOW_PRECISION_EPS = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
_LOW_PRECISION_SLACK = 64  # an answer computed in float32 is "right at float32 precision" within 64 float32 ulps
_LINE = 110  # a message's longest quoted piece (an error message, a repr), cut at a word boundary


class _Feedback:
    """An exception that IPython shows as its `lines` alone, without a traceback."""

    lines: list[str]

    def _render_traceback_(self):
        return list(self.lines)


class CheckFailed(_Feedback, AssertionError):
    """A failed check: ``✗ name: problem`` and ``  hint: hint``, one line each."""

    def __init__(self, name, problem, hint):
        self.name, self.problem, self.hint = name, _one_line(problem), _one_line(hint)
        self.lines = [f"✗ {name}: {self.problem}", f"  hint: {self.hint}"]
        super().__init__("\n".join(self.lines))


class NotDoneYet(_Feedback, NotImplementedError):
    """A check run on the placeholder: ``… name: not done yet``."""

    def __init__(self, name):
        self.name = name
        self.lines = [f"… {name}: not done yet — replace `raise NotImplementedError()` with your answer and run "
                      "the cell"]
        super().__init__(self.lines[0])


def _one_line(text, limit=None):
    """`text` on one line (whitespace runs made one space), cut at a word boundary after `limit` characters."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit + 1]
    cut = cut[: max(cut.rfind(" "), cut.rfind(","))] if (" " in cut or "," in cut) else text[:limit]
    return cut.rstrip(" ,;:") + " …"


def _digits(values, others):
    """The fewest significant digits (4 at least) that tell every value from its differing counterpart."""
    needed = 4
    for v, o in zip(values, others, strict=True):
        for digits in range(needed, 18):
            if f"{v:.{digits}g}" != f"{o:.{digits}g}" or digits == 17:
                needed = digits
                break
    return needed


def _numbers(values, digits):
    text = ", ".join(f"{v:.{digits}g}" for v in values)
    return text if len(values) == 1 else f"[{text}]"


def disagreement(got, want, rtol=1e-9, atol=None):
    """None when `got` equals `want` (shape and values), else one line saying how they differ: the shapes, the values
    (a few numbers), or the first differing entry with its index and how many differ (a larger array).

    Equal means within `rtol` relative and `atol` absolute, atol being by default 1e-12 times the largest |want|
    (1e-12 if want is all zeros): a case whose numbers are all tiny (derivatives of 1e-18) is compared as closely."""
    want = _float64(want)
    if atol is None:
        largest = float(np.abs(want).max()) if want.size else 0.0
        atol = 1e-12 * largest if 0 < largest < np.inf else 1e-12
    try:
        got = _float64(got)
    except Exception:
        return (f"expected an array of shape {want.shape}, got {type(got).__name__} "
                f"{_one_line(repr(got), _LINE // 2)}")
    if got.shape != want.shape:
        shown = f" ({_numbers([float(got)], 6)})" if got.ndim == 0 else ""
        return f"expected shape {want.shape}, got shape {got.shape}{shown}"
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=False)
    if close.all():
        return None
    if want.ndim == 0 or want.size <= 6:
        differ = ~close.ravel()
        digits = _digits(want.ravel()[differ], got.ravel()[differ])
        if want.ndim == 0:
            return f"expected {_numbers([float(want)], digits)}, got {_numbers([float(got)], digits)}"
        return (f"expected {_numbers(want.ravel(), digits)}, got {_numbers(got.ravel(), digits)}"
                + ("" if want.ndim == 1 else f" (shape {want.shape}, flattened)"))
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    digits = _digits([want[index]], [got[index]])
    return (f"at index {index} expected {_numbers([want[index]], digits)}, got {_numbers([got[index]], digits)} "
            f"({int((~close).sum())} of {want.size} entries differ, shape {want.shape})")


def _float64(x):
    """`x` (a number, an array, a tensor, or a list or tuple of them) as a float64 array."""
    if isinstance(x, (list, tuple)) and any(hasattr(item, "detach") for item in x):
        return np.stack([_float64(item) for item in x])
    if hasattr(x, "detach"):  # a torch tensor: NumPy has no bfloat16, so convert on torch's side
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _low_precision(x):
    """The name of the low-precision float dtype `x` (an array, a tensor, or a list or tuple of them) holds, else None."""
    if isinstance(x, (list, tuple)):
        return next((d for d in map(_low_precision, x) if d), None)
    name = str(getattr(x, "dtype", "")).removeprefix("torch.")
    return name if name in _LOW_PRECISION_EPS else None


class Mistake(NamedTuple):
    """A typical wrong answer and the hint it earns: `wrong(*args)` computes it for a case's args (for a value
    exercise, whose args are (), `wrong()` is the wrong value).

    A mistake with a free parameter (an ε of any size) also has `fit(got, *args)`, the parameter that would explain
    the answer `got` (None when none does); the wrong answer is then `wrong(*args, parameter)`, and `examples` are
    parameters it is shown with in the tests."""

    hint: str
    wrong: Callable
    fit: Callable | None = None
    examples: tuple = ()

    def reproduced_by(self, got, args, rtol=1e-9, atol=None):
        """Whether `got` is this wrong answer on the case `args`: equal strings, or arrays of the same shape and
        values."""
        if self.fit is None:
            wrong = self.wrong(*args)
        else:
            parameter = self.fit(got, *args)
            if parameter is None:
                return False
            wrong = self.wrong(*args, parameter)
        if isinstance(wrong, str):
            return isinstance(got, str) and got == wrong
        return disagreement(got, wrong, rtol=rtol, atol=atol) is None


@dataclass(frozen=True)
class Exercise:
    """One graded exercise. `cases(seed)` gives [(label, args)], the first being the notebook's own example;
    `expected(*args)` is the right answer; `mistakes` are the typical wrong answers, tried in order (the first one
    the answer reproduces gives the hint, else `hint` does). For an exercise whose answer is a value (not a
    function), args are () and `judge_value(answer)` -> None or (problem, hint) judges it."""

    name: str
    notebook: str
    points: int
    cases: Callable
    expected: Callable | None = None
    mistakes: tuple[Mistake, ...] = ()
    hint: str = ""
    judge_value: Callable | None = None  # value exercises: answer -> None or (problem, hint)
    success: str = ""  # value exercises: the ✓ line's text

    @property
    def is_value(self):
        return self.judge_value is not None

    def judge(self, label, args, got: Any):
        """None when `got` is right for this case, else (problem, hint), each one line. The check and the grader
        both judge with it: None is "returns nothing"; a float32 (or float16) answer right to its own precision is
        told to compute in float64, one wrong even so is judged (and its mistake recognised) at that precision."""
        try:
            verdict = self._judge(label, args, got)
        except Exception as error:  # a result so odd that comparing it fails
            verdict = (f"wrong on {label}: could not compare the result ({_error_text(error)})",
                       self.hint or "check the type and shape of what you return")
        return None if verdict is None else (_one_line(verdict[0]), _one_line(verdict[1]))

    def _judge(self, label, args, got):
        if self.judge_value is not None:
            verdict = self.judge_value(got)
            if verdict is None:
                return None
            problem, hint = verdict
            return problem, next((m.hint for m in self.mistakes if m.reproduced_by(got, args)), hint)
        assert self.expected is not None, f"exercise {self.name!r} has neither expected nor judge_value"
        if got is None:
            return NO_RETURN, NO_RETURN_HINT
        want = self.expected(*args)
        problem = disagreement(got, want)
        if problem is None:
            return None
        rtol, atol = 1e-9, None
        low = _low_precision(got)
        if low is not None:
            rtol = _LOW_PRECISION_SLACK * _LOW_PRECISION_EPS[low]
            magnitude = np.abs(_float64(want))
            atol = rtol * float(magnitude.max()) if magnitude.size else rtol
            if disagreement(got, want, rtol=rtol, atol=atol) is None:
                digits = round(-np.log10(_LOW_PRECISION_EPS[low]))
                return (f"wrong on {label}: your result is {low}, right to its {digits} significant digits only "
                        "(the checks compare at float64 precision)",
                        f"compute in float64, the precision of the inputs: a {low} step anywhere rounds every number "
                        f"to about {digits} digits")
        hint = next((m.hint for m in self.mistakes if m.reproduced_by(got, args, rtol, atol)), self.hint)
        return f"wrong on {label}: {problem}", hint

    def check(self, answer, seed=0):
        """The notebook's check: print ✓, or raise CheckFailed (✗ and a hint) or NotDoneYet ("not done yet")."""
        if answer is None and self.is_value:
            raise NotDoneYet(self.name)
        if not self.is_value and not callable(answer):
            raise CheckFailed(self.name, f"expected the function you wrote, got {type(answer).__name__}",
                              f"pass `{self.name}` itself, not its result")
        proved = "" if self.is_value else self.prove(answer)
        cases = self.cases(seed)
        for label, args in cases:
            # the answer gets copies: an in-place answer (grads.neg_()) must not change what it is judged against
            got = answer if self.is_value else _call(self.name, answer, label, copy.deepcopy(args))
            verdict = self.judge(label, args, got)
            if verdict is not None:
                raise CheckFailed(self.name, *verdict)
        print(f"✓ {self.name}: " + (self.success.format(answer=answer) if self.is_value else
                                     f"correct on {cases[0][0]} and {len(cases) - 1} more cases{proved}"))

    def prove(self, answer) -> str:
        """What the check proves of `answer` before its cases: '' here; a derivation step (`derivation.Step`) proves
        the answer equal to the step on symbols, returns the ✓ line's ending, and raises CheckFailed or NotDoneYet
        as the check does. The grader judges the cases only."""
        return ""


def registry(exercises: Iterable[Exercise]) -> dict:
    """{name: exercise} in the given order; a name used twice is an error (names are global across the course)."""
    exercises_by_name: dict[str, Exercise] = {}
    for exercise in exercises:
        if exercise.name in exercises_by_name:
            raise ValueError(f"exercise name {exercise.name!r} of notebook {exercise.notebook} is already taken "
                             f"by notebook {exercises_by_name[exercise.name].notebook}: names are global across "
                             "the course")
        exercises_by_name[exercise.name] = exercise
    return exercises_by_name


def _error_text(error):
    """'Type: message' on one line, the message cut at a word boundary."""
    message = _one_line(str(error), _LINE)
    return type(error).__name__ + (f": {message}" if message else "")


def _where(error):
    """The source line of the student's code where `error` was raised (the deepest frame outside the libraries and
    these checks), or ''."""
    tinycam = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    libraries = (os.path.dirname(np.__path__[0]), tinycam + os.sep, os.path.dirname(os.__file__))
    tb, line = error.__traceback__, ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(libraries):
            line = linecache.getline(filename, tb.tb_lineno).strip() or line
        tb = tb.tb_next
    return _one_line(line, _LINE // 2)


def _call(name, answer, label, args):
    try:
        return answer(*args)
    except NotImplementedError:
        raise NotDoneYet(name) from None
    except Exception as error:
        where = _where(error)
        message = _one_line(str(error), _LINE)
        raise CheckFailed(name, f"raised {type(error).__name__} on {label}" + (f": {message}" if message else "")
                          + (f" (at `{where}`)" if where else ""), RAISED_HINT) from error
