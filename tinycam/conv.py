"""Convolution arithmetic in plain NumPy: sizes, receptive fields, costs, padding, convolution and its transpose.

Everything is single-channel and 2-D unless stated, and "convolution" means what deep learning means by it:
cross-correlation, y(i, j) = Σ_mn x(i·S + m·d, j·S + n·d) · w(m, n), with no kernel flip.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "output_size",
    "transposed_output_size",
    "receptive_field",
    "dilated_receptive_field",
    "conv_cost",
    "depthwise_separable_cost",
    "PADDING_MODES",
    "pad",
    "conv2d",
    "conv_matrix",
    "conv_transpose2d",
]


def _positive_int(value, name, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------------------------
# sizes


def output_size(w_in: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """W_o = ⌊(W_i + 2P − K_eff) / S⌋ + 1 with the dilated kernel size K_eff = K + (K − 1)(d − 1).

    With d = 1 this is the slide's W_o = (W_i + 2P − K)/S + 1; the floor is what frameworks do when S does not
    divide evenly (the last, incomplete window is dropped).
    """
    w_in, k = _positive_int(w_in, "w_in"), _positive_int(k, "k")
    stride, dilation = _positive_int(stride, "stride"), _positive_int(dilation, "dilation")
    padding = _positive_int(padding, "padding", minimum=0)
    k_eff = dilated_receptive_field(k, dilation)
    if w_in + 2 * padding < k_eff:
        raise ValueError(f"the (dilated) kernel of size {k_eff} is larger than the padded input {w_in + 2 * padding}")
    return (w_in + 2 * padding - k_eff) // stride + 1


def transposed_output_size(w_in: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """W_o = K + (W_i − 1)·S − 2P: the size a transposed convolution produces (it undoes output_size's shape)."""
    w_in, k, stride = _positive_int(w_in, "w_in"), _positive_int(k, "k"), _positive_int(stride, "stride")
    padding = _positive_int(padding, "padding", minimum=0)
    size = k + (w_in - 1) * stride - 2 * padding
    if size < 1:
        raise ValueError(f"padding {padding} crops away the whole output of size {size + 2 * padding}; use less padding")
    return size


def receptive_field(kernels: Sequence[int], strides: Sequence[int] | None = None) -> list[int]:
    """R_1 = K_1 and R_l = R_{l−1} + (K_l − 1) ∏_{i<l} S_i; returns [R_1, ..., R_L] for the listed layers."""
    kernels = [_positive_int(k, "kernel size") for k in kernels]
    strides = [1] * len(kernels) if strides is None else [_positive_int(s, "stride") for s in strides]
    if len(strides) != len(kernels):
        raise ValueError(f"need one stride per kernel, got {len(kernels)} kernels and {len(strides)} strides")
    fields: list[int] = []
    jump = 1
    for k, s in zip(kernels, strides):
        fields.append((fields[-1] if fields else 1) + (k - 1) * jump)
        jump *= s
    return fields


def dilated_receptive_field(k: int, dilation: int) -> int:
    """R = K + (K − 1)(d − 1): the span of a K-tap kernel whose taps are d pixels apart."""
    return _positive_int(k, "k") + (_positive_int(k, "k") - 1) * (_positive_int(dilation, "dilation") - 1)


# ---------------------------------------------------------------------------------------------------------------
# costs (multiply-accumulates)


def conv_cost(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Regular convolution: C_out · C_in · K · K · W · H multiply-accumulates for an H×W output."""
    return c_out * c_in * k * k * w * h


def depthwise_separable_cost(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Depthwise K×K per input channel, then pointwise 1×1: C_in·K·K·W·H + C_out·C_in·W·H."""
    return c_in * k * k * w * h + c_out * c_in * w * h


# ---------------------------------------------------------------------------------------------------------------
# padding

# torch's name -> NumPy's np.pad mode. The slide's "reflective" picture repeats the edge pixel: that is NumPy's
# "symmetric", which torch does not offer; torch's "reflect" mirrors around the edge pixel without repeating it.
PADDING_MODES = {
    "zeros": "constant",
    "replicate": "edge",
    "reflect": "reflect",
    "circular": "wrap",
    "symmetric": "symmetric",
}


def pad(x: ArrayLike, p: int, mode: str = "zeros") -> np.ndarray:
    """Pad a 2-D array by p pixels on every side. mode: "zeros", "replicate", "reflect", "circular" (torch's names)
    or "symmetric" (NumPy's name for the mirror that repeats the edge, the slide's "reflective padding")."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"pad expects a 2-D array (H, W), got shape {x.shape}")
    if mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; use one of {sorted(PADDING_MODES)}")
    p = _positive_int(p, "p", minimum=0)
    if mode == "reflect" and p >= min(x.shape):
        raise ValueError(f"reflect padding needs p < the input size {min(x.shape)}, got p={p}")
    return np.pad(x, p, mode=PADDING_MODES[mode])  # type: ignore[call-overload]  # modes as names, checked above


# ---------------------------------------------------------------------------------------------------------------
# convolution, as a loop and as a matrix


def _check_2d(x: ArrayLike, kernel: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, kernel = np.asarray(x, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if x.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"expected a 2-D input (H, W) and a 2-D kernel (K, K), got {x.shape} and {kernel.shape}")
    return x, kernel


def conv2d(
    x: ArrayLike, kernel: ArrayLike, stride: int = 1, padding: int = 0, dilation: int = 1, mode: str = "zeros"
) -> np.ndarray:
    """y(i, j) = Σ_mn x_pad(i·S + m·d, j·S + n·d) · w(m, n): cross-correlation with stride, padding and dilation."""
    x, kernel = _check_2d(x, kernel)
    out_h = output_size(x.shape[0], kernel.shape[0], stride, padding, dilation)
    out_w = output_size(x.shape[1], kernel.shape[1], stride, padding, dilation)
    x = pad(x, padding, mode)
    y = np.zeros((out_h, out_w))
    for m in range(kernel.shape[0]):
        for n in range(kernel.shape[1]):
            rows = slice(m * dilation, m * dilation + (out_h - 1) * stride + 1, stride)
            cols = slice(n * dilation, n * dilation + (out_w - 1) * stride + 1, stride)
            y += kernel[m, n] * x[rows, cols]
    return y


def conv_matrix(input_shape: tuple[int, int], kernel: ArrayLike, stride: int = 1) -> np.ndarray:
    """The matrix C with conv2d(x, kernel, stride).ravel() == C @ x.ravel(): one row per output pixel, holding the
    kernel at the input pixels that output pixel reads. For a 4×4 input and a 3×3 kernel it is the slide's 4×16."""
    kernel = np.asarray(kernel, dtype=np.float64)
    h, w = input_shape
    k_h, k_w = kernel.shape
    out_h, out_w = output_size(h, k_h, stride), output_size(w, k_w, stride)
    matrix = np.zeros((out_h * out_w, h * w))
    for i in range(out_h):
        for j in range(out_w):
            window = np.zeros((h, w))
            window[i * stride : i * stride + k_h, j * stride : j * stride + k_w] = kernel
            matrix[i * out_w + j] = window.ravel()
    return matrix


def conv_transpose2d(y: ArrayLike, kernel: ArrayLike, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Transposed convolution: every input pixel stamps y(i, j)·w at (i·S, j·S) and overlaps add up; then P pixels
    are cropped from each side. With P = 0 it equals (Cᵀ @ y.ravel()) reshaped, C = conv_matrix of the convolution
    from the output's shape back to y's (conv_matrix has no padding; with P > 0 the result is that one, cropped)."""
    y, kernel = _check_2d(y, kernel)
    k_h, k_w = kernel.shape
    out_h = transposed_output_size(y.shape[0], k_h, stride, padding)
    out_w = transposed_output_size(y.shape[1], k_w, stride, padding)
    full = np.zeros((k_h + (y.shape[0] - 1) * stride, k_w + (y.shape[1] - 1) * stride))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            full[i * stride : i * stride + k_h, j * stride : j * stride + k_w] += y[i, j] * kernel
    return full[padding : padding + out_h, padding : padding + out_w]
