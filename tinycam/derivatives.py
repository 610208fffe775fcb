"""Exact higher-order derivatives with autograd, to check the Grad-CAM++ homework numerically.

`diagonal_derivatives(fn, acts, order)` returns ∂ⁿY/∂(A^k_ij)ⁿ for n = 1..order and every activation A^k_ij, where
Y = fn(acts) is a scalar. Each is an n-th directional derivative along the basis vector e_kij, computed by nesting
forward-mode autograd (`torch.func.jvp`) n times, all basis vectors at once with `torch.func.vmap`. Exact up to
rounding (no finite differences), for any differentiable fn: e.g. fn = exp(S) with S a ReLU head.
"""

from collections.abc import Callable

import torch
from torch.func import jvp, vmap

__all__ = ["diagonal_derivatives", "exp_score"]


def _directional(fn, direction, n):
    """The function a -> Dⁿfn(a)[e, ..., e]: n nested forward-mode derivatives along one direction e."""
    derivative = fn
    for _ in range(n):
        derivative = (lambda f: (lambda a: jvp(f, (a,), (direction,))[1]))(derivative)
    return derivative


def diagonal_derivatives(
    fn: Callable[[torch.Tensor], torch.Tensor], acts: torch.Tensor, order: int = 3
) -> list[torch.Tensor]:
    """[∂Y/∂A, ∂²Y/∂A², ..., ∂^order Y/∂A^order], each shaped like acts, taken entry by entry (the diagonal)."""
    if not isinstance(acts, torch.Tensor) or not acts.is_floating_point():
        raise ValueError("acts must be a floating-point tensor")
    basis = torch.eye(acts.numel(), dtype=acts.dtype, device=acts.device).reshape(-1, *acts.shape)

    def along(direction, n):
        return _directional(fn, direction, n)(acts)

    return [vmap(along, in_dims=(0, None))(basis, n).reshape(acts.shape).detach() for n in range(1, order + 1)]


def exp_score(
    score_fn: Callable[[torch.Tensor], torch.Tensor], acts: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Y(A) = exp(S(A) − S(acts)): the paper's exponential score, shifted by the constant S(acts) so it cannot
    overflow (S ≈ 89 already overflows float32). The shift scales every derivative by the same exp(−S(acts)),
    which cancels in α."""
    shift = score_fn(acts).detach()
    return lambda a: torch.exp(score_fn(a) - shift)
