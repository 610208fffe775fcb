"""Pixel-level explanations: gradient saliency, guided backprop, Guided Grad-CAM, occlusion, class model visualization.

Each works on any model returning class scores (B, n_classes), batched, on the model's device, and leaves the model
exactly as it found it (modules, flags, hooks, `requires_grad`, no `.grad` written), also when it raises.
Maps here are raw (signed where the method is); `tinycam.explain` normalizes them for display.
"""

import contextlib
import math
import numbers
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from tinycam.cams import cam_map
from tinycam.capturing import (
    PIXELS_PER_FORWARD,
    Layer,
    Target,
    batches,
    capture,
    check_images,
    class_indices,
    class_probabilities,
    count,
    exclusive,
)

__all__ = ["saliency", "guided_backprop", "guided_gradcam", "occlusion", "class_model"]


def _input_gradients(model: nn.Module, images: torch.Tensor, target: Target) -> torch.Tensor:
    """∂S_c/∂I for one class per image, (B, C, H, W): the capture path with the input as the layer."""
    grads = capture(model, images, None, target).grads
    assert grads is not None
    return grads


def saliency(model: nn.Module, images: torch.Tensor, target: Target = None) -> torch.Tensor:
    """M_ij = max_c |∂S_c/∂I_(c,i,j)|: the largest absolute input gradient over colour channels (Simonyan et al.,
    ICLR 2014 workshop, section 3.1); (B, C, H, W) -> (B, H, W)."""
    return _input_gradients(model, images, target).abs().amax(dim=1)


# ---------------------------------------------------------------------------------------------------------------
# guided backprop


def _positive(grad: torch.Tensor) -> torch.Tensor:
    """The guided rule's clamp: only the positive part of the gradient reaching a ReLU's output passes."""
    return grad.clamp(min=0)


_RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _StrayReluDetector(TorchFunctionMode):
    """Counts ReLUs called outside nn.ReLU modules (F.relu, torch.relu, x.relu()): guided backprop can't reach them."""

    def __init__(self):
        super().__init__()
        self.inside_module = 0
        self.stray = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELU_FUNCTIONS and not self.inside_module:
            self.stray += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _guided_relus(model: nn.Module) -> Iterator[_StrayReluDetector]:
    """While active, every nn.ReLU module of the model back-propagates only positive gradients where its input was
    positive. The ReLU's own backward applies the mask (input > 0); a hook on its output clamps the gradient at 0.
    Modules are not replaced (the same objects, the same `inplace` flags): hooks are added, and removed after."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(
            "guided backprop needs the model's ReLUs to be nn.ReLU modules, and this model has none (does it call "
            "F.relu or torch.relu in forward?); rewrite those calls as nn.ReLU() submodules"
        )
    detector = _StrayReluDetector()
    handles = []

    def enter(_module, _inputs):
        detector.inside_module += 1

    def leave(_module, _inputs, output):
        detector.inside_module -= 1
        if output.requires_grad:  # a hook on the output's gradient: no copy of the activation is made
            output.register_hook(_positive)

    try:
        for relu in relus:
            handles.append(relu.register_forward_pre_hook(enter))
            handles.append(relu.register_forward_hook(leave))
        with detector:
            yield detector
    finally:
        for handle in handles:
            handle.remove()


def _eager(model: nn.Module) -> nn.Module:
    """The module a `torch.compile`d model wraps (the same modules and weights, run eagerly), so the hooks on its
    nn.ReLU modules run where guided backprop needs them."""
    original = getattr(model, "_orig_mod", None)
    return original if isinstance(original, nn.Module) else model


def guided_backprop(model: nn.Module, images: torch.Tensor, target: Target = None) -> torch.Tensor:
    """∂S_c/∂I with every ReLU's backward replaced by the guided rule R_in = (x > 0) · max(R_out, 0)
    (Springenberg et al., ICLR 2015 workshop); (B, C, H, W) -> (B, C, H, W)."""
    check_images(model, images)
    model = _eager(model)
    with exclusive(model), _guided_relus(model) as detector:
        grads = _input_gradients(model, images, target)
    if detector.stray:
        raise ValueError(
            f"the model calls a ReLU {detector.stray} time(s) outside nn.ReLU modules (F.relu, torch.relu or "
            "x.relu()), where guided backprop can't change the backward pass, so the map would be silently wrong; "
            "rewrite those calls as nn.ReLU() submodules"
        )
    return grads


def guided_gradcam(model: nn.Module, images: torch.Tensor, layer: Layer, target: Target = None) -> torch.Tensor:
    """Guided backprop ⊙ the Grad-CAM map ReLU(Σ_k α_k^c A^k) bilinearly upsampled to the input, at its own scale
    (Selvaraju et al., ICCV 2017, section 3.2): fine detail, restricted to the class's regions;
    (B, C, H, W) -> (B, C, H, W). `explain` min-max normalizes the product for display, not the Grad-CAM factor."""
    gradcam = cam_map(model, images, layer, "gradcam", target, normalize=False)
    return guided_backprop(model, images, target) * gradcam[:, None]


# ---------------------------------------------------------------------------------------------------------------
# occlusion


def _fill_value(fill: object, images: torch.Tensor) -> torch.Tensor:
    """`fill` as a tensor that broadcasts over (C, H, W): a number, or one value per channel, (C,) or (C, 1, 1)."""
    channels = images.shape[1]
    wanted = f"a number or one value per channel, ({channels},) or ({channels}, 1, 1)"
    if isinstance(fill, bool | str | bytes):
        raise ValueError(f"fill must be {wanted}; got {fill!r}")
    try:
        value = torch.as_tensor(fill, device=images.device)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"fill must be {wanted}; got {type(fill).__name__}") from error
    if value.dtype == torch.bool or value.is_complex():
        raise ValueError(f"fill must be {wanted}; got a {value.dtype} tensor")
    if value.shape not in ((), (channels,), (channels, 1, 1)):
        raise ValueError(f"fill must be {wanted}; got shape {tuple(value.shape)}")
    value = value.to(images.dtype).reshape(-1, 1, 1)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"fill must be finite (in the images' dtype {images.dtype}), got {fill!r}")
    return value


def _window_starts(size: int, patch: int, stride: int) -> list[int]:
    """0, stride, 2·stride, ... while the window fits, and a last one flush with the edge (size − patch) when the
    regular starts do not end there, so every pixel is under at least one window (Captum clips a last window)."""
    starts = list(range(0, size - patch + 1, stride))
    return starts if starts[-1] == size - patch else [*starts, size - patch]


def occlusion(
    model: nn.Module,
    images: torch.Tensor,
    target: Target = None,
    patch: int = 8,
    stride: int = 4,
    fill: float | list[float] | tuple[float, ...] | torch.Tensor = 0.0,
    batch_size: int | None = None,
    progress: bool | None = None,
    output: str | None = None,
) -> torch.Tensor:
    """Δ_ij = p_c(I) − p_c(I with a patch of `fill` over (i, j)), averaged over the patches covering each pixel
    (Zeiler & Fergus, ECCV 2014, section 4.2). (B, C, H, W) -> (B, H, W); a positive value means hiding that region
    lowers the class probability.

    Windows start every `stride` pixels (1 ≤ stride ≤ patch), plus one flush with the bottom/right edge where
    (H − patch) or (W − patch) is not a multiple of `stride`, so every pixel is covered.
    fill: a number, or one value per channel (e.g. the mean colour) as a (C,) sequence or a (C, 1, 1) tensor; finite.
    output: what p is: "sigmoid", "softmax" or "score" (the raw class score); default `model.output_activation`,
    else "softmax". The map is in the images' dtype, or in float32 for float16/bfloat16 images: p and the drops are
    computed in float32 there (in half precision most drops round to 0).
    batch_size: occluded images per forward pass; default max(B, ⌈2^18 / (H·W)⌉): the caller's own batch, so its
    memory and the floor of (windows + 1) passes of B images, unless the images are small. A progress bar (stderr,
    with tqdm) appears when there are more than 4 batches, or when progress=True (False: never)."""
    check_images(model, images)
    class_probabilities(model, images.new_zeros(1, 1), output)  # a bad `output` fails before any work
    batch, _, height, width = images.shape
    patch = count("patch", patch, 1, min(height, width), f"an integer from 1 to the image size {min(height, width)}")
    stride = count("stride", stride, 1, patch, f"a positive integer at most the patch size {patch} (a larger stride never "
                   "occludes the pixels between windows)")
    if batch_size is None:
        batch_size = max(batch, -(-PIXELS_PER_FORWARD // (height * width)))
    batch_size = count("batch_size", batch_size, what="a positive integer (or None)")
    fill_value = _fill_value(fill, images)
    work = torch.promote_types(images.dtype, torch.float32)  # p and the drops: at least float32
    device = images.device
    tops = torch.tensor(_window_starts(height, patch, stride), device=device)
    lefts = torch.tensor(_window_starts(width, patch, stride), device=device)
    rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
    inside_rows = (rows >= tops[:, None]) & (rows < tops[:, None] + patch)  # (n_tops, H)
    inside_cols = (cols >= lefts[:, None]) & (cols < lefts[:, None] + patch)  # (n_lefts, W)
    # how many windows cover each pixel (≥ 1): a count along the rows times one along the columns
    counts = (inside_rows.sum(dim=0)[:, None] * inside_cols.sum(dim=0)[None, :]).to(work)
    first = capture(model, images, None, target, gradients=False)
    targets = first.targets
    original = class_probabilities(model, first.scores.to(work), output).gather(1, targets[:, None])[:, 0]  # (B,)
    with torch.no_grad():
        drops = torch.zeros(batch, height, width, dtype=work, device=device)
        # every (image, window) pair, window by window, `batch_size` occluded images per forward pass; window p is
        # the rows of top p // n_lefts times the columns of left p % n_lefts
        n_pairs = batch * len(tops) * len(lefts)
        image_of = torch.arange(n_pairs, device=device) % batch
        window_of = torch.arange(n_pairs, device=device) // batch
        for start in batches(n_pairs, batch_size, progress):
            b, p = image_of[start : start + batch_size], window_of[start : start + batch_size]
            windows = inside_rows[p // len(lefts), :, None] & inside_cols[p % len(lefts), None, :]  # (n, H, W)
            occluded = torch.where(windows[:, None], fill_value, images[b])
            scores = capture(model, occluded, None, targets[b], gradients=False).scores
            probabilities = class_probabilities(model, scores.to(work), output).gather(1, targets[b][:, None])[:, 0]
            drops.index_add_(0, b, (original[b] - probabilities)[:, None, None] * windows)
    return drops / counts


# ---------------------------------------------------------------------------------------------------------------
# class model visualization


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), horizontal, groups=channels)
    return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="replicate"), vertical, groups=channels)


def _check_ascent_options(**options: float) -> None:
    """Class model visualization's options: counts are non-negative integers, rates finite and non-negative."""
    for name, smallest in (("steps", 0), ("jitter", 0), ("blur_every", 1)):
        count(name, options[name], smallest, what=f"an integer ≥ {smallest}")
    for name in ("lr", "l2", "blur_sigma", "noise"):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")


def class_model(
    model: nn.Module,
    targets: int | list[int] | torch.Tensor,
    shape: tuple[int, int, int] = (3, 64, 64),
    steps: int = 100,
    lr: float = 0.1,
    l2: float = 1e-3,
    jitter: int = 0,
    blur_sigma: float = 0.0,
    blur_every: int = 10,
    seed: int = 0,
    mean: float | torch.Tensor | None = None,
    noise: float = 0.0,
) -> torch.Tensor:
    """argmax_I S_c(I) − λ‖I − m‖²₂ by gradient ascent from I = m (Simonyan et al., ICLR 2014 workshop, section 2,
    where the data are zero-centred, so m = 0 is the mean image and their λ‖I‖²₂ pulls toward it):
    repeat: S_c of the current image, backprop the one-hot score vector to the image, take a small step
    I += lr · (∂S_c/∂I − 2λ(I − m)). `mean` is m: None (zeros), a number, or a tensor that broadcasts to `shape`
    (e.g. (3, 1, 1), the mean colour, for a model that centres its input itself). `noise` starts from
    m + noise · U(−1, 1) instead (seeded), for a network whose gradient at a flat image is exactly 0. Options: `jitter` (random shifts
    of I − m by up to that many pixels each step) and `blur_sigma` (a Gaussian blur of I − m every `blur_every`
    steps), the usual regularizers. One image per target class, all optimized together, in the dtype and on the
    device of the model's parameters; deterministic from `seed`. Returns (n_targets, *shape)."""
    like = next(model.parameters(), next(model.buffers(), torch.zeros(())))
    targets = class_indices(targets).to(like.device)
    _check_ascent_options(steps=steps, lr=lr, l2=l2, jitter=jitter, blur_sigma=blur_sigma, blur_every=blur_every,
                          noise=noise)
    centre = _ascent_mean(mean, shape, like)
    generator = torch.Generator().manual_seed(seed)
    offset = torch.zeros(len(targets), *shape, dtype=like.dtype, device=like.device)  # I − m
    if noise > 0:
        offset = noise * (2 * torch.rand(offset.shape, generator=generator, dtype=like.dtype) - 1).to(like.device)
    for step in range(steps):
        dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else (0, 0))
        x = offset.roll((dy, dx), dims=(-2, -1))
        grads = _input_gradients(model, x if centre is None else centre + x, targets)
        offset = (x + lr * (grads - 2 * l2 * x)).roll((-dy, -dx), dims=(-2, -1))
        if blur_sigma > 0 and (step + 1) % blur_every == 0:
            offset = _gaussian_blur(offset, blur_sigma)
    return offset if centre is None else centre + offset


def _ascent_mean(mean: float | torch.Tensor | None, shape: tuple[int, int, int],
                 like: torch.Tensor) -> torch.Tensor | None:
    """class_model's `mean` as a finite tensor of the model's dtype that broadcasts to `shape` (None stays None)."""
    if mean is None:
        return None
    if isinstance(mean, bool) or not isinstance(mean, (numbers.Real, torch.Tensor)):
        raise TypeError(f"mean must be None, a number or a tensor, got {type(mean).__name__}")
    centre = torch.as_tensor(mean, dtype=like.dtype, device=like.device)
    try:
        torch.broadcast_shapes(centre.shape, tuple(shape))
    except RuntimeError:
        raise ValueError(f"mean of shape {tuple(centre.shape)} does not broadcast to the image shape {tuple(shape)}; "
                         f"pass one value per channel as ({shape[0]}, 1, 1) or a whole image {tuple(shape)}") from None
    if centre.dim() > len(shape):
        raise ValueError(f"mean must have at most {len(shape)} dimensions (one image), got shape {tuple(centre.shape)}")
    if not bool(torch.isfinite(centre).all()):
        raise ValueError("mean must be finite (no NaN or inf)")
    return centre.expand(*shape)
