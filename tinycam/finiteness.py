"""Finiteness checks, and a way to make a pipeline of equations pay for one instead of one per step.

Each check of `tinycam.torch_reference`'s equations (their inputs are finite, their results did not overflow) costs
a reduction and a host sync. Called directly, every equation checks at once, as the NumPy twin does. Inside
`checked_at_the_end()` a step's check only keeps its tensor's sum; the block's caller asks once, at the end, whether
every kept sum is finite, and, when one is not, runs the equations again outside the block, so the error raised is
the one that names the step that went wrong (a NaN in the weights, an overflow in Σ_k w_k A^k). Every step is still
checked: a NaN or an inf that a later ReLU or division would hide is kept before it is hidden.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = ["all_finite", "step_finite", "checked_at_the_end"]

_KEPT: ContextVar[list[tuple[torch.Tensor, torch.Tensor]] | None] = ContextVar("tinycam_kept_checks", default=None)


def all_finite(x: torch.Tensor) -> bool:
    """Whether every value of x is finite, in one host sync: a finite sum settles it (a NaN or inf makes the sum
    non-finite); only a non-finite sum, which finite values can reach by overflowing, needs the value-by-value test."""
    return math.isfinite(x.sum()) or bool(torch.isfinite(x).all())


def step_finite(x: torch.Tensor) -> bool:
    """`all_finite(x)`; inside `checked_at_the_end()`, True at once and x's sum kept for the check at the end (a
    tensor already kept is not summed twice)."""
    kept = _KEPT.get()
    if kept is None:
        return all_finite(x)
    if not any(x is tensor for tensor, _ in kept):
        kept.append((x, x.sum()))
    return True


@contextmanager
def checked_at_the_end() -> Iterator[Callable[[], bool]]:
    """A block whose steps keep their checks (this thread or task only); it yields a function that says, in one host
    sync, whether every step so far was finite. False can also mean finite values whose sum overflowed: rerunning
    outside the block then raises nothing and gives the result."""
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    token = _KEPT.set(kept)
    try:
        yield lambda: not kept or all_finite(torch.stack([total for _, total in kept]))
    finally:
        _KEPT.reset(token)
