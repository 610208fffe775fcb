"""The one path that runs a model: check the images, resolve the layer and the targets, eval mode and its restore,
the forward pass with the graph cut at the layer, and ∂y^c/∂A. Every method of tinycam runs the model through here.

Cost: the forward pass runs without autograd up to the chosen layer; there the layer's output is detached and
re-attached as a leaf, so the graph (and the memory it keeps) starts at that layer, and `torch.autograd.grad`
differentiates the class scores down to that leaf only. No parameter `.grad` is written and nothing is
back-propagated through the early layers: a Grad-CAM costs about one inference pass (`python -m tinycam bench`).

The user's model is left exactly as it was found: its modules' `training` flags, every `requires_grad`, and no
hook left behind, also when an error is raised half-way. Calls on the same model are serialized (`exclusive`): two
threads explaining with one model take turns, since hooks and eval-mode flags live on the model; calls on different
models run in parallel. Nothing is stored on the model itself.
"""

import numbers
import operator
import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tinycam.finiteness import all_finite

__all__ = [
    "PIXELS_PER_FORWARD",
    "Capture",
    "Layer",
    "Target",
    "capture",
    "check_images",
    "all_finite",
    "class_indices",
    "eval_mode",
    "exclusive",
    "resolve_layer",
    "resolve_targets",
    "count",
    "batches",
    "OUTPUTS",
    "class_probabilities",
]

Layer = str | nn.Module  # a submodule or its dotted name ("features.3")
Target = None | int | list[int] | torch.Tensor  # None: each image's predicted class


class Capture(NamedTuple):
    """What `capture` returns, for a batch of B images and a layer with K feature maps of size h×w."""

    acts: torch.Tensor  # A, (B, K, h, w); the images themselves when no layer is given
    grads: torch.Tensor | None  # ∂y^c/∂A, like acts, one class c per image; None with gradients=False
    scores: torch.Tensor  # the model's output y, (B, n_classes)
    targets: torch.Tensor  # the class c of each image, (B,) int64


# ---------------------------------------------------------------------------------------------------------------
# checking what the user passed


def check_images(model: nn.Module, images: torch.Tensor) -> None:
    """Raise a clear error unless `images` is a finite floating-point (B, C, H, W) tensor on the model's device and
    dtype, and gradients can be recorded (not under `torch.inference_mode()`)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        hint = " (a single image? add the batch axis with images[None])" if images.ndim == 3 else ""
        raise ValueError(f"images must have shape (B, C, H, W), got shape {tuple(images.shape)}{hint}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0); pass at least one image")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point, got {images.dtype}; convert them with images.float()")
    param = next(model.parameters(), None)
    if param is not None and param.device != images.device:
        raise ValueError(
            f"images are on {images.device} but the model is on {param.device}; "
            f"move them with images.to({str(param.device)!r})"
        )
    if param is not None and param.is_floating_point() and param.dtype != images.dtype:
        raise ValueError(
            f"images are {images.dtype} but the model's parameters are {param.dtype}; use images.to({param.dtype})"
        )
    if not all_finite(images):
        raise ValueError("images contain NaN or inf values; every pixel must be finite")
    if torch.is_inference_mode_enabled():
        raise RuntimeError("explanations need gradients: call this outside `with torch.inference_mode():`")


def resolve_layer(model: nn.Module, layer: Layer) -> nn.Module:
    """The module `layer` names ("features.3") or is; a clear error listing the valid names otherwise."""
    if isinstance(layer, nn.Module):
        if not any(module is layer for module in model.modules()):
            raise ValueError("the layer module passed is not part of this model; pass one of its submodules or a name")
        return layer
    if isinstance(layer, str) and layer:
        try:
            return model.get_submodule(layer)  # fast, and a module registered twice answers to both names
        except AttributeError:
            pass
    named = dict(model.named_modules(remove_duplicate=False))
    if not isinstance(layer, str) or layer not in named:
        valid = [name for name in named if name]
        shown = ", ".join(repr(n) for n in valid[:40]) + (f", ... ({len(valid)} in all)" if len(valid) > 40 else "")
        raise ValueError(f"unknown layer {layer!r}; valid layer names are: {shown}")
    return named[layer]


_TARGET_FORMS = "an int, a list of ints (one per image) or an integer tensor"


def class_indices(target: int | list[int] | torch.Tensor | np.ndarray) -> torch.Tensor:
    """`target` as a flat int64 tensor of class indices, or a clear error for anything that is not class indices
    (a float, a bool, a string, None inside a list, an index beyond int64)."""
    if isinstance(target, torch.Tensor | np.ndarray):
        values = torch.as_tensor(target)
        if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
            raise ValueError(f"target must be class indices ({_TARGET_FORMS}), got a tensor of dtype {values.dtype}")
        return values.to(torch.int64).reshape(-1)
    items = list(target) if isinstance(target, list | tuple) else [target]
    for item in items:
        if isinstance(item, bool | np.bool_) or not isinstance(item, numbers.Integral):
            raise ValueError(f"target must be class indices ({_TARGET_FORMS}), got {item!r} in {target!r}")
        if not -(2**63) <= int(item) < 2**63:
            raise ValueError(f"target class {int(item)} is out of range")
    return torch.tensor([int(item) for item in items], dtype=torch.int64)


def resolve_targets(target: Target, batch: int, n_classes: int, scores: torch.Tensor | None = None) -> torch.Tensor:
    """The class c of each of `batch` images, (batch,) int64: `target` checked against `n_classes`, or, for
    target=None, the predicted class `scores.argmax(1)`."""
    if target is None:
        if scores is None:
            raise ValueError("target=None means each image's predicted class, which needs the scores")
        return scores.argmax(dim=1)
    targets = class_indices(target)
    if targets.numel() not in (1, batch):
        raise ValueError(f"target must be one class index or one per image ({batch}), got {targets.numel()}")
    if isinstance(target, torch.Tensor | np.ndarray):  # checked where it lies (one host sync)
        bad = (targets < 0) | (targets >= n_classes)
        out_of_range = int(targets[bad][0]) if bool(bad.any()) else None
    else:  # Python ints, checked in Python before they move to the device
        out_of_range = next((c for c in targets.tolist() if not 0 <= c < n_classes), None)
    if out_of_range is not None:
        raise ValueError(
            f"target class {out_of_range} is out of range: the model has {n_classes} classes (0 to {n_classes - 1})"
        )
    if scores is not None:
        targets = targets.to(scores.device)
    return targets.expand(batch)


# ---------------------------------------------------------------------------------------------------------------
# leaving the model as we found it


_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


@contextmanager
def exclusive(model: nn.Module) -> Iterator[None]:
    """Hold the model's own lock: one tinycam call at a time per model (re-entrant within a thread). The locks live
    in a weak-keyed map beside the models, so the model gains no attribute and is freed as usual."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(model, threading.RLock())
    with lock:
        yield


def _submodules(model: nn.Module) -> list[nn.Module]:
    """The model and every module inside it, each once: `model.modules()` without building each module's dotted
    name, twice as fast, which a batch-1 explanation notices."""
    found, seen = [model], {id(model)}
    for module in found:  # the list grows while it is walked: breadth first
        for child in module._modules.values():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                found.append(child)
    return found


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Set every module's `training` flag to False (BatchNorm must not mix the images of a batch) and restore each
    flag after. The flags are set directly: a `train()` override of the user's model is not run, so nothing else
    it would change (e.g. `requires_grad`) changes."""
    flags = [(module, module.training) for module in _submodules(model)]
    if not any(training for _, training in flags):  # already in eval mode, the usual case: nothing to set or restore
        yield
        return
    try:
        for module, _ in flags:
            module.training = False
        yield
    finally:
        for module, training in flags:
            module.training = training


def _warn_if_batch_statistics(model: nn.Module, batch: int) -> None:
    """BatchNorm without running statistics normalizes with the batch's own statistics even in eval mode."""
    if batch > 1 and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats for m in model.modules()
    ):
        warnings.warn(
            "the model has a BatchNorm layer with track_running_stats=False: it normalizes with the batch's own "
            "statistics even in eval mode, so each image's map depends on the other images of the batch; explain "
            "one image at a time for maps of each image alone",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------------------------
# the forward pass


def _check_scores(scores: object, batch: int) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or scores.shape[0] != batch:
        got = f"shape {tuple(scores.shape)}" if isinstance(scores, torch.Tensor) else f"a {type(scores).__name__}"
        raise ValueError(
            f"the model must return class scores of shape (B, n_classes) = ({batch}, n_classes), got {got}; if it "
            "returns a dict or a tuple such as (logits, aux), wrap it in a module whose forward returns the logits "
            "alone, e.g. forward = lambda self, x: model(x)['logits']"
        )
    return scores


def _forward_from_layer(
    model: nn.Module, images: torch.Tensor, layer: Layer, need_grads: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model; return (A, scores) where A is the layer's output, a leaf requiring grad if need_grads."""
    module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []

    def cut_and_reattach(_module, _inputs, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
            raise ValueError(
                f"layer {layer if isinstance(layer, str) else type(module).__name__!r} outputs {shape}, not a feature "
                f"map (B, K, h, w); choose a convolutional layer or block, e.g. one of {convs[-4:]}"
            )
        if seen:
            raise ValueError("the chosen layer runs more than once in one forward pass; choose a layer that runs once")
        leaf = output.detach().requires_grad_(need_grads)
        seen.append(leaf)
        torch.set_grad_enabled(need_grads)  # from here on the forward pass records the graph (if gradients are needed)
        # a copy, so an in-place operation downstream (ReLU(inplace=True)) cannot modify the leaf we differentiate to
        return leaf.clone() if need_grads else leaf

    handle = module.register_forward_hook(cut_and_reattach)
    try:
        with torch.no_grad():  # nothing before the layer is recorded
            scores = model(images)
    finally:
        handle.remove()
    if not seen:
        raise ValueError("the chosen layer did not run during the forward pass; choose a layer the model uses")
    return seen[0], _check_scores(scores, len(images))


def _forward_from_input(model: nn.Module, images: torch.Tensor, need_grads: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model on (a leaf copy of) the images; return (images, scores)."""
    inputs = images.detach().clone().requires_grad_(True) if need_grads else images
    with torch.set_grad_enabled(need_grads):
        scores = model(inputs)
    return inputs, _check_scores(scores, len(images))


def capture(
    model: nn.Module,
    images: torch.Tensor,
    layer: Layer | None = None,
    target: Target = None,
    gradients: bool = True,
) -> Capture:
    """Activations A, gradients ∂y^c/∂A and scores y for one class per image.

    model: any nn.Module returning scores (B, n_classes). images: (B, C, H, W) on the model's device and dtype.
    layer: a submodule or its dotted name ("features.3") whose output is a feature map (B, K, h, w); None means
    the input itself (A = the images, ∂y^c/∂I for saliency and guided backprop).
    target: None (each image's predicted class), an int (the same class for all) or one per image (list/tensor).
    gradients=False: the forward pass only (no graph is recorded); `grads` is None.
    """
    check_images(model, images)
    _warn_if_batch_statistics(model, len(images))
    with exclusive(model), eval_mode(model), torch.enable_grad():  # also under a caller's torch.no_grad()
        if layer is None:
            acts, scores = _forward_from_input(model, images, gradients)
        else:
            acts, scores = _forward_from_layer(model, images, layer, gradients)
        batch, n_classes = scores.shape
        targets = resolve_targets(target, batch, n_classes, scores)
        if not gradients:
            return Capture(acts.detach(), None, scores.detach(), targets)
        if not scores.requires_grad:
            raise ValueError(
                "the class scores do not depend on the chosen layer, or the model computes them without gradients "
                "(a torch.no_grad() or .detach() in its forward after this layer); choose a layer before the "
                "classifier, or remove that no_grad/detach"
            )
        # ∂(Σ_b y_b^{c_b})/∂A: the images are independent, so one backward serves all; seeding it with the one-hot of
        # each image's class differentiates exactly that sum
        one_hot = torch.zeros_like(scores).scatter_(1, targets[:, None], 1.0)
        (grads,) = torch.autograd.grad(scores, acts, one_hot, allow_unused=True)
    if layer is not None:
        _check_gradients(grads)
    return Capture(acts.detach(), grads, scores.detach(), targets)


def _check_gradients(grads: torch.Tensor | None) -> None:
    """An error when ∂y/∂A is zero everywhere (every map would be blank), a warning naming the images where it is."""
    nonzero = [] if grads is None else grads.flatten(1).any(dim=1).tolist()  # one host sync; NaN counts as nonzero
    if not any(nonzero):
        raise ValueError(
            "the gradient of the class score with respect to the chosen layer is zero everywhere, so every map would be "
            "blank; choose a layer the score depends on (usually the last convolutional block)"
        )
    if not all(nonzero):
        blank = [i for i, any_nonzero in enumerate(nonzero) if not any_nonzero]
        warnings.warn(
            f"the gradient is zero everywhere for image(s) {blank}: their Grad-CAM maps will be "
            "blank (a saturated output, or every ReLU after the layer inactive for that image)",
            stacklevel=3,
        )


def count(name: str, value: object, low: int = 1, high: int | None = None, what: str = "a positive integer") -> int:
    """`value` as an int (Python or NumPy integers; not bool, not floats) in [low, high], or a clear error."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


PIXELS_PER_FORWARD = 2**18  # the default batch holds at least this many pixels: 64 images of 64×64, 5 of 224×224


def batches(n_images: int, batch_size: int, progress: bool | None, desc: str = "occlusion") -> Iterator[int]:
    """The starts of the batches; with a progress bar (stderr, labelled `desc`) when there are more than 4 batches or
    progress=True, if tqdm is installed (the library does not need it; progress=True without it is an error)."""
    starts = range(0, n_images, batch_size)
    if not (len(starts) > 4 if progress is None else progress):
        return iter(starts)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm; install it with `pip install tqdm`, or pass progress=None") from None
        return iter(starts)
    return iter(tqdm(starts, desc=desc, unit="batch"))


OUTPUTS = ("sigmoid", "softmax", "score")


def class_probabilities(model: nn.Module, scores: torch.Tensor, output: str | None = None) -> torch.Tensor:
    """The class probabilities the model's scores stand for, (B, n_classes): `output`, else
    `model.output_activation` ("sigmoid" for multi-label models, "softmax", or "score" for the raw scores), else
    "softmax". Occlusion and the deletion / insertion curves score with it."""
    activation = output or getattr(model, "output_activation", "softmax")
    if activation not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {activation!r}")
    return {"sigmoid": torch.sigmoid, "softmax": lambda s: s.softmax(dim=1), "score": lambda s: s}[activation](scores)
