"""Is a map faithful to the model? Deletion and insertion curves and their areas (Petsiuk et al., "RISE", BMVC 2018,
section 4.1): remove (or insert) the pixels in the map's order, most important first, and follow the class
probability. A faithful map makes it fall fast when deleting (small area) and rise fast when inserting (large area).

The images are changed `steps` times; every step of every image is scored, `batch_size` images per forward pass,
through the capture path (`tinycam.capture`), so the model is left as found (eval mode for the passes, then its own
flags; no hook, no `.grad`). Ties in a map are broken in raster order (row by row, left to right): of two pixels of
equal importance the one met first is removed first, the same on every device and dtype.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tinycam.capturing import (
    PIXELS_PER_FORWARD,
    Target,
    all_finite,
    capture,
    check_images,
    class_probabilities,
    count,
)

__all__ = [
    "Curves",
    "BLUR_TAPS",
    "BLUR_SIGMA",
    "blur",
    "deletion_order",
    "area_under_curve",
    "deletion_curve",
    "insertion_curve",
]

# RISE's insertion starts from the image blurred by an 11-tap Gaussian of std 5 pixels (its released code: gkern(11, 5))
BLUR_TAPS, BLUR_SIGMA = 11, 5.0


class Curves(NamedTuple):
    """What `deletion_curve` and `insertion_curve` return for B images and n steps."""

    fractions: torch.Tensor  # (n + 1,) the fraction of pixels removed (inserted) at each step, 0 to 1
    probabilities: torch.Tensor  # (B, n + 1) the class probability at each step
    auc: torch.Tensor  # (B,) the area under each curve, `area_under_curve`


def blur(images: torch.Tensor, taps: int = BLUR_TAPS, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Each channel convolved with a `taps`-tap Gaussian of std `sigma` pixels along rows, then columns (weights
    exp(−t² / 2σ²), t = −taps//2 … taps//2, normalized to sum 1), edges replicated: (B, C, H, W) -> (B, C, H, W).
    RISE's code pads with zeros, which darkens the border; replicating keeps a flat image flat."""
    radius = taps // 2
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    rows = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, taps)
    cols = kernel.view(1, 1, -1, 1).expand(channels, 1, taps, 1)
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), rows, groups=channels)
    return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="replicate"), cols, groups=channels)


def deletion_order(maps: torch.Tensor) -> torch.Tensor:
    """The rank of each pixel in the order of removal, 0 for the most important, (B, H, W) -> (B, H, W) int64:
    map values from the largest down, ties in raster order (a stable sort of the flattened map)."""
    flat = maps.flatten(1)
    order = torch.argsort(-flat, dim=1, stable=True)
    positions = torch.arange(flat.shape[1], device=maps.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions).view_as(maps)


def area_under_curve(fractions: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """AUC = Σ_k (x_{k+1} − x_k) (p_k + p_{k+1}) / 2, the trapezoid rule over the fractions x of pixels changed
    (Petsiuk et al., BMVC 2018, section 4.1): (n + 1,) and (B, n + 1) -> (B,). In [0, 1] for probabilities, since x
    runs from 0 to 1."""
    widths = fractions[1:] - fractions[:-1]
    return ((probabilities[:, 1:] + probabilities[:, :-1]) / 2 * widths).sum(dim=1)


def _check_maps(maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"maps must be a torch.Tensor of shape (B, H, W), got {type(maps).__name__}")
    batch, _, height, width = images.shape
    if maps.ndim == 4 and maps.shape[0] == batch and maps.shape[-2:] == (height, width):
        raise ValueError(f"maps must have one value per pixel, (B, H, W) = ({batch}, {height}, {width}), got "
                         f"{tuple(maps.shape)}; reduce per-colour-channel maps first, e.g. maps.abs().amax(dim=1)")
    if maps.shape != (batch, height, width):
        raise ValueError(f"maps must have shape (B, H, W) = ({batch}, {height}, {width}), one per image at the images' "
                         f"size, got {tuple(maps.shape)}; upsample the maps to the images' size first")
    if maps.is_complex() or maps.dtype == torch.bool:
        raise ValueError(f"maps must be real numbers, got {maps.dtype}")
    if not all_finite(maps.double()):
        raise ValueError("maps contain NaN or inf; every pixel's importance must be finite")
    return maps.to(images.device)


def _curves(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    start: torch.Tensor,
    finish: torch.Tensor,
    target: Target,
    steps: int,
    batch_size: int | None,
    output: str | None,
) -> Curves:
    """Step k shows `finish` on the first ⌊k·N / steps⌋ pixels of the map's order and `start` elsewhere."""
    batch, _, height, width = images.shape
    pixels = height * width
    steps = count("steps", steps, 1, pixels, f"an integer from 1 to the number of pixels ({pixels})")
    if batch_size is None:
        batch_size = max(batch, -(-PIXELS_PER_FORWARD // pixels))
    batch_size = count("batch_size", batch_size, what="a positive integer (or None)")
    class_probabilities(model, images.new_zeros(1, 1), output)  # a bad `output` fails before any work
    ranks = deletion_order(maps)
    counts = torch.arange(steps + 1, device=images.device) * pixels // steps  # pixels changed at each step
    targets = capture(model, images, None, target, gradients=False).targets
    n_pairs = batch * (steps + 1)
    image_of = torch.arange(n_pairs, device=images.device) // (steps + 1)
    step_of = torch.arange(n_pairs, device=images.device) % (steps + 1)
    probabilities = []
    for first in range(0, n_pairs, batch_size):
        b, k = image_of[first : first + batch_size], step_of[first : first + batch_size]
        changed = (ranks[b] < counts[k][:, None, None])[:, None]  # (n, 1, H, W)
        scores = capture(model, torch.where(changed, finish[b], start[b]), None, targets[b], gradients=False).scores
        work = torch.promote_types(scores.dtype, torch.float32)
        probabilities.append(class_probabilities(model, scores.to(work), output).gather(1, targets[b][:, None])[:, 0])
    curves = torch.cat(probabilities).view(batch, steps + 1)
    fractions = counts.to(curves.dtype) / pixels
    return Curves(fractions, curves, area_under_curve(fractions, curves))


def _baseline(baseline: float | torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    value = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    try:
        value = value.expand_as(images)
    except RuntimeError:
        raise ValueError(f"baseline must be a number or broadcast to the images {tuple(images.shape)}, got shape "
                         f"{tuple(value.shape)}") from None
    if not all_finite(value):
        raise ValueError("baseline must be finite")
    return value


def deletion_curve(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: Target = None,
    steps: int = 32,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int | None = None,
    output: str | None = None,
) -> Curves:
    """The deletion curve (Petsiuk et al., "RISE", BMVC 2018, section 4.1): p_c of the image with its first
    ⌊k·N/steps⌋ pixels in the map's order (most important first, ties in raster order) replaced by `baseline`, for
    k = 0 … steps; and its area (lower = more faithful). The default baseline 0 is a black image, as in RISE.

    images (B, C, H, W) on the model's device and dtype; maps (B, H, W), one importance per pixel at the images' size
    (any real values: only their order matters); target: as for `tinycam.capture` (None: each image's predicted
    class, resolved once on the intact images); output: what p is, "sigmoid", "softmax" or "score", default
    `model.output_activation`, else softmax. batch_size: images per forward pass, default max(B, ⌈2^18 / (H·W)⌉).
    """
    check_images(model, images)
    maps = _check_maps(maps, images)
    return _curves(model, images, maps, images, _baseline(baseline, images), target, steps, batch_size, output)


def insertion_curve(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: Target = None,
    steps: int = 32,
    baseline: float | torch.Tensor | None = None,
    batch_size: int | None = None,
    output: str | None = None,
) -> Curves:
    """The insertion curve (Petsiuk et al., "RISE", BMVC 2018, section 4.1): p_c of the image that starts as
    `baseline` and gets its first ⌊k·N/steps⌋ pixels in the map's order (most important first, ties in raster order)
    back, k = 0 … steps; and its area (higher = more faithful). baseline None: the images blurred as in RISE
    (`blur`, an 11-tap Gaussian of std 5 px), which removes the objects' shapes but keeps their colours; or a number
    or a tensor broadcasting to the images. Other arguments as for `deletion_curve`."""
    check_images(model, images)
    maps = _check_maps(maps, images)
    start = blur(images) if baseline is None else _baseline(baseline, images)
    return _curves(model, images, maps, start, images, target, steps, batch_size, output)
