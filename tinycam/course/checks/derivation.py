"""Derivation steps as exercises: the student writes one step of a derivation as a small function of the step's
symbols, with arithmetic only (+, -, *, / and `sum` or `len` of the lists it is given), so that the same function runs
on SymPy symbols and on NumPy numbers.

`Step` is an `Exercise` whose check first proves the answer on symbols: it calls the answer with the SymPy symbols of
`symbols()` and requires ``sympy.simplify(answer - expected) == 0``, `expected` being the step derived by SymPy from
the same symbols (the exercise's `expected` dispatches on its arguments: symbols or numbers). A wrong expression is
compared with the step's known mistakes (the exercise's `Mistake`s, written with arithmetic so that they run on symbols
as well as on the numeric cases) for its hint. The ✗ line shows the student's own expression, simplified, never the
expected one. The numeric cases then run as for any exercise; the grader judges those only (plain arrays in and out),
so an answer needs SymPy nowhere but in the notebook's check.

NumPy only at import: SymPy is imported by the functions that use it.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

from tinycam.course.checks.framework import NO_RETURN, NO_RETURN_HINT, CheckFailed, Exercise, NotDoneYet

__all__ = ["SYMBOLS_HINT", "Step", "equal", "is_symbolic"]

SYMBOLS_HINT = ("write the step with arithmetic only (+, -, *, / and sum() or len() of the arguments): the check also "
                "runs your function on symbols, where functions that turn values into floats fail")
_SHOWN = 110  # the longest expression quoted in a ✗ line


def _no_cases():
    return []


@dataclass(frozen=True)
class Step(Exercise):
    """A derivation step: an `Exercise` whose check also proves the answer on symbols (`prove`).

    `symbols()` gives [(label, args)] holding SymPy symbols; `expected(*args)` must accept them and return the step's
    expression; `statement` names the step in the lecture's notation, for the ✗ line."""

    symbols: Callable = _no_cases
    statement: str = "the step"

    def prove(self, answer):
        """Prove `answer` equal to the step on every symbolic case: the ✓ line's ending, or CheckFailed / NotDoneYet.

        An answer that raises on symbols but not on the notebook's own numeric example is told to use arithmetic
        only; one that raises on both is left to the numeric cases, whose ✗ line names the error."""
        cases = self.symbols()
        for label, args in cases:
            try:
                got = answer(*args)
            except NotImplementedError:
                raise NotDoneYet(self.name) from None
            except Exception as error:
                if _raises(answer, self.cases(0)[0][1]):
                    return ""
                message = " ".join(str(error).split())[:_SHOWN]
                raise CheckFailed(self.name, f"raised {type(error).__name__} on {label}"
                                  + (f": {message}" if message else ""), SYMBOLS_HINT) from error
            verdict = self.judge_symbols(label, args, got)
            if verdict is not None:
                raise CheckFailed(self.name, *verdict)
        return f", and proved equal to {self.statement} on symbols"

    def judge_symbols(self, label, args, got):
        """None when the expression `got` simplifies to the step's on the symbolic case `args`, else (problem, hint)."""
        import sympy

        if got is None:
            return NO_RETURN, NO_RETURN_HINT
        expression = _expression(got)
        if expression is None:
            return (f"wrong on {label}: expected one expression of the symbols, got {type(got).__name__}",
                    SYMBOLS_HINT)
        assert self.expected is not None, f"derivation step {self.name!r} has no expected function"
        if equal(expression, self.expected(*args)):
            return None
        shown = sympy.sstr(sympy.simplify(expression))
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + " …"
        problem = f"wrong on {label}: your expression simplifies to {shown}, which is not {self.statement}"
        for mistake in self.mistakes:
            try:
                wrong = mistake.wrong(*args)
            except Exception:  # a mistake that needs numbers (none should): it cannot be the answer
                continue
            if equal(expression, wrong):
                return problem, mistake.hint
        return problem, self.hint


def is_symbolic(value):
    """Whether `value` is a SymPy expression (a symbol, a number or an expression of them)."""
    return hasattr(value, "free_symbols")


def equal(got, want):
    """Whether two SymPy expressions are equal: their difference simplifies to 0. A constant written as a float
    (1/3 computed as 0.333…) leaves coefficients of rounding size (below 1e-12), taken as 0."""
    import sympy

    difference = sympy.simplify(sympy.sympify(got) - sympy.sympify(want))
    if difference == 0:
        return True
    rounding = {f: sympy.Integer(0) for f in difference.atoms(sympy.Float) if abs(f) < 1e-12}
    return bool(rounding) and sympy.simplify(difference.xreplace(rounding)) == 0


def _expression(got):
    """`got` as one SymPy expression, or None: a one-element NumPy array (NumPy functions on symbols make object
    arrays) gives its element; lists, strings and the like give None."""
    import sympy

    if isinstance(got, (list, tuple, dict, set, str, bytes)):
        return None
    if hasattr(got, "shape") and hasattr(got, "reshape"):
        if getattr(got, "size", 0) != 1:
            return None
        got = got.reshape(-1)[0]
    try:
        return sympy.sympify(got, strict=True)
    except (sympy.SympifyError, TypeError, ValueError, AttributeError):
        return None


def _raises(answer, args):
    """Whether `answer` raises on (a copy of) the numeric `args`."""
    try:
        answer(*copy.deepcopy(args))
    except Exception:
        return True
    return False
