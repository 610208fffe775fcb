"""The checks' machinery: an exercise as data (`Exercise`), its known mistakes (`Mistake`), and the ✓/✗/… lines.

An exercise asks the student to write a small function (or give a value). Its check runs the answer on the example
the notebook shows *and* on random cases (seeded; the grader uses seeds the student never sees), compares with the
expected answer, and

- prints one line ``✓ name: ...`` when every case agrees;
- prints ``✗ name: what was expected, what came back`` and a hint (the hint of the first known mistake the answer
  reproduces, else the exercise's generic hint) and raises AssertionError when one does not;
- prints ``… name: not done yet`` and raises NotImplementedError while the answer is still the placeholder
  (a function raising NotImplementedError, or None for an exercise whose answer is a value).

NumPy only: an exercise whose cases are torch tensors imports torch inside its own functions.
"""

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Exercise", "Mistake", "disagreement", "registry"]


def _show(x):
    text = np.array2string(np.asarray(x, dtype=np.float64), precision=4, suppress_small=True, separator=", ")
    return text.replace("\n", "\n    ")


def disagreement(got, want, rtol=1e-9, atol=1e-12):
    """None when `got` equals `want` (shape and values), else a sentence saying how they differ."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected an array of shape {np.shape(want)}, got {type(got).__name__} {got!r:.80}"
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"expected shape {want.shape}, got shape {got.shape}"
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False):
        return f"expected\n    {_show(want)}\n  got\n    {_show(got)}"
    return None


class Mistake(NamedTuple):
    """A typical wrong answer and the hint it earns: `wrong(*args)` computes it for a case's args (for a value
    exercise, whose args are (), `wrong()` is the wrong value)."""

    hint: str
    wrong: Callable


def _reproduces(got, wrong):
    """Whether `got` is the wrong answer `wrong`: equal strings, or arrays of the same shape and values."""
    if isinstance(wrong, str):
        return isinstance(got, str) and got == wrong
    return disagreement(got, wrong) is None


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
        """None when `got` is right for this case, else (problem, hint)."""
        if self.judge_value is not None:
            verdict = self.judge_value(got)
            if verdict is None:
                return None
            problem, hint = verdict
        else:
            assert self.expected is not None, f"exercise {self.name!r} has neither expected nor judge_value"
            problem = disagreement(got, self.expected(*args))
            if problem is None:
                return None
            problem, hint = f"wrong on {label}: {problem}", self.hint
        return problem, next((m.hint for m in self.mistakes if _reproduces(got, m.wrong(*args))), hint)

    def check(self, answer, seed=0):
        """The notebook's check: print ✓, or print ✗ and raise AssertionError, or say "not done yet"."""
        if answer is None and self.is_value:
            _not_done(self.name)
        if not self.is_value and not callable(answer):
            _fail(self.name, f"expected the function you wrote, got {type(answer).__name__}",
                  f"pass `{self.name}` itself, not its result")
        cases = self.cases(seed)
        for label, args in cases:
            # the answer gets copies: an in-place answer (grads.neg_()) must not change what it is judged against
            got = answer if self.is_value else _call(self.name, answer, copy.deepcopy(args))
            verdict = self.judge(label, args, got)
            if verdict is not None:
                _fail(self.name, *verdict)
        print(f"✓ {self.name}: " + (self.success.format(answer=answer) if self.is_value else
                                     f"correct on {cases[0][0]} and {len(cases) - 1} more cases"))


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


def _not_done(name):
    print(f"… {name}: not done yet — replace `raise NotImplementedError()` with your answer and run the cell")
    raise NotImplementedError(f"{name}: not done yet")


def _call(name, answer, args):
    try:
        return answer(*args)
    except NotImplementedError:
        _not_done(name)


def _fail(name, problem, hint):
    print(f"✗ {name}: {problem}\n  hint: {hint}")
    raise AssertionError(f"{name}: {problem.splitlines()[0]} (hint: {hint})")
