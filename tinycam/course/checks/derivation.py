"""Derivation steps as exercises: the student writes one step of a derivation as a small function of the step's
symbols, with arithmetic only (+, -, *, / and `sum` or `len` of the lists it is given), so that the same function runs
on SymPy symbols and on NumPy numbers.

`Step` is an `Exercise` whose check first proves the answer on symbols: it calls the answer with the SymPy symbols of
`symbols()` and requires ``sympy.simplify(answer - expected) == 0`` (`equal`; float constants read as fractions,
`exact`), `expected` being the step derived by SymPy from the same symbols (the exercise's `expected` dispatches on its
arguments: symbols or numbers) or written with arithmetic itself. A step may give several expressions (a tuple, or a
NumPy object array, compared item by item). A wrong expression is compared with the step's known mistakes (the
exercise's `Mistake`s, written with arithmetic so that they run on symbols as well as on the numeric cases; a mistake
with a free parameter, an ε of any size, fits it from the answer with `Mistake.fit`, which then receives symbols) for
its hint. The ✗ line shows the student's own expression, simplified, never the expected one. The numeric cases then
run as for any exercise; the grader judges those only (plain arrays in and out), so an answer needs SymPy nowhere but
in the notebook's check.

NumPy only at import: SymPy is imported by the functions that use it.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

from tinycam.course.checks.framework import NO_RETURN, NO_RETURN_HINT, CheckFailed, Exercise, NotDoneYet

__all__ = ["SYMBOLS_HINT", "Step", "equal", "exact", "is_symbolic"]

SYMBOLS_HINT = ("write the step with arithmetic only (+, -, *, / and sum() or len() of the arguments): the check also "
                "runs your function on symbols, where functions that turn values into floats fail")
_SHOWN = 110  # the longest expression quoted in a ✗ line


def _no_cases():
    return []


@dataclass(frozen=True)
class Step(Exercise):
    """A derivation step: an `Exercise` whose check also proves the answer on symbols (`prove`).

    `symbols()` gives [(label, args)] holding SymPy symbols (or NumPy object arrays of them); `expected(*args)` must
    accept them and return the step's expression (or a tuple of expressions); `statement` names the step, for the ✓
    and ✗ lines; `symbols_hint` says which operations run on symbols, for an answer that raises on them."""

    symbols: Callable = _no_cases
    statement: str = "the step"
    symbols_hint: str = SYMBOLS_HINT

    def prove(self, answer):
        """Prove `answer` equal to the step on every symbolic case: the ✓ line's ending, or CheckFailed / NotDoneYet.

        An answer that raises on symbols is told to use arithmetic only, unless the notebook's own numeric example
        says more: there it raises too, or it makes a known mistake (a ReLU on the wrong term, which cannot run on
        symbols); that is left to the numeric cases, whose ✗ line names the error or the mistake."""
        for label, args in self.symbols():
            try:  # on copies: an answer that changes its arguments in place must not change what it is judged against
                got = answer(*copy.deepcopy(args))
            except NotImplementedError:
                raise NotDoneYet(self.name) from None
            except Exception as error:
                if self._numbers_say_more(answer):
                    return ""
                message = " ".join(str(error).split())[:_SHOWN]
                raise CheckFailed(self.name, f"raised {type(error).__name__} on {label}"
                                  + (f": {message}" if message else ""), self.symbols_hint) from error
            verdict = self.judge_symbols(label, args, got)
            if verdict is not None:
                raise CheckFailed(self.name, *verdict)
        return f", and proved equal to {self.statement} on symbols"

    def _numbers_say_more(self, answer):
        """Whether `answer` raises on (a copy of) the notebook's numeric example, or gets a hint there other than the
        exercise's generic one (a known mistake's)."""
        label, args = self.cases(0)[0]
        try:
            got = answer(*copy.deepcopy(args))
        except Exception:
            return True
        verdict = self.judge(label, args, got)
        return verdict is not None and verdict[1] != self.hint

    def judge_symbols(self, label, args, got):
        """None when the expression `got` (or each of a tuple of them) simplifies to the step's on the symbolic case
        `args`, else (problem, hint): the hint of the first known mistake `got` makes, else the exercise's."""
        import sympy

        if got is None:
            return NO_RETURN, NO_RETURN_HINT
        assert self.expected is not None, f"derivation step {self.name!r} has no expected function"
        want = _expressions(self.expected(*args))
        assert want is not None, f"derivation step {self.name!r}: expected gives no expression on {label}"
        items = _expressions(got)
        if items is None or len(items) != len(want) or (len(want) == 1 and isinstance(got, (list, tuple))):
            what = f"{len(items)} expressions" if items is not None and len(items) != 1 else type(got).__name__
            wanted = "one expression" if len(want) == 1 else f"{len(want)} expressions (a tuple)"
            # several expressions but not as many as the step's: the step's hint says what they are
            return f"wrong on {label}: expected {wanted} of the symbols, got {what}", (
                self.hint if items is not None and len(want) > 1 else self.symbols_hint)
        if _all_equal(items, want):
            return None
        shown = ", ".join(sympy.sstr(sympy.simplify(item)) for item in items)
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + " …"
        problem = (f"wrong on {label}: your expression simplifies to {shown}, which is not {self.statement}"
                   if len(items) == 1 else
                   f"wrong on {label}: your expressions simplify to ({shown}), which are not {self.statement}")
        for mistake in self.mistakes:
            try:
                if mistake.fit is None:
                    wrong = mistake.wrong(*args)
                else:
                    parameter = mistake.fit(got, *args)
                    if parameter is None:
                        continue
                    wrong = mistake.wrong(*args, parameter)
                wrong = _expressions(wrong)
            except Exception:  # a mistake that needs numbers (none should): it cannot be the answer
                continue
            if wrong is not None and len(wrong) == len(items) and _all_equal(items, wrong):
                return problem, mistake.hint
        return problem, self.hint


def is_symbolic(value):
    """Whether `value` is a SymPy expression (a symbol, a number or an expression of them)."""
    return hasattr(value, "free_symbols")


def equal(got, want):
    """Whether two SymPy expressions are equal: the difference of their `exact` forms simplifies to 0."""
    import sympy

    return sympy.simplify(exact(got) - exact(want)) == 0


def exact(expression):
    """`expression` (a SymPy expression or a number) with its float constants made exact rationals: each the simple
    fraction (denominator up to 10⁶) within 1e-12 of it, as a constant computed in floats is (1/3 as 0.333…, 0.2/3),
    else its exact value, so that an ε of any size (1e-40) stays an ε."""
    import sympy

    expression = sympy.sympify(expression)
    fractions = {}
    for number in expression.atoms(sympy.Float):
        value = sympy.Rational(number)
        simple = value.limit_denominator(10**6)
        fractions[number] = simple if abs(simple - value) <= 1e-12 * abs(value) else value
    return expression.xreplace(fractions)


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


def _expressions(got):
    """`got` as a list of SymPy expressions, or None: one for an expression or a one-element array, one per item of a
    tuple, a list or a NumPy (object) array, flattened."""
    if isinstance(got, (list, tuple)) or (hasattr(got, "shape") and getattr(got, "size", 1) != 1):
        try:
            parts = [_expressions(item) for item in (got.reshape(-1) if hasattr(got, "reshape") else got)]
        except (TypeError, AttributeError, ValueError):
            return None
        return None if any(part is None for part in parts) else [item for part in parts for item in part]
    expression = _expression(got)
    return None if expression is None else [expression]


def _all_equal(items, others):
    return all(equal(a, b) for a, b in zip(items, others, strict=True))
