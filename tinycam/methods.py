"""Capture A and ∂y^c/∂A from any torch model, and turn them into maps: `capture` and `explain`.

Cost: the forward pass runs without autograd up to the chosen layer; there the layer's output is detached and
re-attached as a leaf, so the graph (and the memory it keeps) starts at that layer, and `torch.autograd.grad`
differentiates the class scores down to that leaf only. No parameter `.grad` is written and nothing is
back-propagated through the early layers: a Grad-CAM costs about one inference pass.

The user's model is left exactly as it was found: its modules' `training` flags, every `requires_grad`, and no
hook left behind, also when an error is raised half-way.
"""

import warnings
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from tinycam import torch_reference

__all__ = ["Capture", "capture", "explain", "METHODS", "LAYER_METHODS", "PIXEL_METHODS", "resolve_layer"]


class Capture(NamedTuple):
    """What `capture` returns, for a batch of B images and a layer with K feature maps of size h×w."""

    acts: torch.Tensor  # A, (B, K, h, w)
    grads: torch.Tensor  # ∂y^c/∂A, (B, K, h, w), one class c per image; None when not asked for
    scores: torch.Tensor  # the model's output y, (B, n_classes)
    targets: torch.Tensor  # the class c of each image, (B,) int64


# ---------------------------------------------------------------------------------------------------------------
# checking what the user passed


def _check_images(model, images):
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        hint = " (a single image? add the batch axis with images[None])" if images.ndim == 3 else ""
        raise ValueError(f"images must have shape (B, C, H, W), got shape {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point, got {images.dtype}; convert them with images.float()")
    param = next(model.parameters(), None)
    if param is not None and param.device != images.device:
        raise ValueError(
            f"images are on {images.device} but the model is on {param.device}; move them with images.to({str(param.device)!r})"
        )
    if param is not None and param.is_floating_point() and param.dtype != images.dtype:
        raise ValueError(f"images are {images.dtype} but the model's parameters are {param.dtype}; use images.to({param.dtype})")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values; every pixel must be finite")
    if torch.is_inference_mode_enabled():
        raise RuntimeError("explanations need gradients: call this outside `with torch.inference_mode():`")


def resolve_layer(model, layer):
    """The module `layer` names ("features.3") or is; a clear error listing the valid names otherwise."""
    if isinstance(layer, nn.Module):
        if not any(module is layer for module in model.modules()):
            raise ValueError("the layer module passed is not part of this model; pass one of its submodules or a name")
        return layer
    named = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in named:
        valid = [name for name in named if name]
        shown = ", ".join(repr(n) for n in valid[:40]) + (f", ... ({len(valid)} in all)" if len(valid) > 40 else "")
        raise ValueError(f"unknown layer {layer!r}; valid layer names are: {shown}")
    return named[layer]


def _targets(target, scores):
    batch, n_classes = scores.shape
    if target is None:
        return scores.argmax(dim=1)
    targets = torch.as_tensor(target, device=scores.device)
    if targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"target must be class indices (int, list or integer tensor), got dtype {targets.dtype}")
    targets = targets.to(torch.int64).reshape(-1)
    if targets.numel() == 1:
        targets = targets.expand(batch)
    if targets.numel() != batch:
        raise ValueError(f"target must be one class index or one per image ({batch}), got {targets.numel()}")
    bad = (targets < 0) | (targets >= n_classes)
    if bool(bad.any()):
        raise ValueError(
            f"target class {int(targets[bad][0])} is out of range: the model has {n_classes} classes (0 to {n_classes - 1})"
        )
    return targets


# ---------------------------------------------------------------------------------------------------------------
# leaving the model as we found it


@contextmanager
def _eval_mode(model):
    """Put every module in eval mode (BatchNorm must not mix the images of a batch) and restore each flag after."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def _forward(model, images, layer, need_grads):
    """Run the model; return (A, scores) where A is the layer's output, a leaf requiring grad if need_grads."""
    module = resolve_layer(model, layer)
    seen = []

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
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"the model must return class scores of shape (B, n_classes), got {shape}")
    return seen[0], scores


def capture(model, images, layer, target=None):
    """Activations A, gradients ∂y^c/∂A and scores y for one class per image.

    model: any nn.Module returning scores (B, n_classes). images: (B, C, H, W) on the model's device and dtype.
    layer: a submodule or its dotted name ("features.3") whose output is a feature map (B, K, h, w).
    target: None (each image's predicted class), an int (the same class for all) or one per image (list/tensor).
    """
    _check_images(model, images)
    with _eval_mode(model), torch.enable_grad():  # also under a caller's torch.no_grad()
        acts, scores = _forward(model, images, layer, need_grads=True)
        targets = _targets(target, scores)
        picked = scores.gather(1, targets[:, None]).sum()  # images are independent, so one backward serves all
        if not picked.requires_grad:
            raise ValueError("the class scores do not depend on the chosen layer; choose a layer before the classifier")
        (grads,) = torch.autograd.grad(picked, acts, allow_unused=True)
    if grads is None or not bool(grads.any()):
        raise ValueError(
            "the gradient of the class score with respect to the chosen layer is zero everywhere, so every map would be "
            "blank; choose a layer the score depends on (usually the last convolutional block)"
        )
    blank = (grads.flatten(1) == 0).all(dim=1)
    if bool(blank.any()):
        warnings.warn(
            f"the gradient is zero everywhere for image(s) {blank.nonzero()[:, 0].tolist()}: their Grad-CAM maps will be "
            "blank (a saturated output, or every ReLU after the layer inactive for that image)",
            stacklevel=2,
        )
    return Capture(acts.detach(), grads, scores.detach(), targets)


# ---------------------------------------------------------------------------------------------------------------
# from A and ∂y/∂A to maps


def _cam_weights(model, acts, scores, targets):
    """The classifier's w_k^c of each target class, after checking that y = W · GAP(A) + b holds for this model."""
    pooled = torch_reference.gap(acts)  # (B, K)
    for module in reversed(list(model.modules())):
        if isinstance(module, nn.Linear) and module.in_features == pooled.shape[1]:
            with torch.no_grad():
                predicted = module(pooled)
            if predicted.shape == scores.shape and torch.allclose(predicted, scores, rtol=1e-4, atol=1e-4):
                return module.weight.detach()[targets]
    raise ValueError(
        "CAM needs a model whose scores are a linear layer applied to the global average pooling of this layer's "
        f"{pooled.shape[1]} feature maps (Zhou et al.), and this model/layer is not one; use method='gradcam', which "
        "works for any architecture"
    )


# CAM-family method -> how its map is made from A (B, K, h, w) and ∂y/∂A; CAM needs no gradients at all
LAYER_METHODS = {
    "cam": None,
    "gradcam": torch_reference.gradcam,
    "counterfactual": torch_reference.counterfactual,
    "gradcam++": torch_reference.gradcampp,
    "positive-gradcam": torch_reference.positive_gradcam,
}
# pixel-level method -> (function name in tinycam.pixels, whether it takes a layer); see tinycam/pixels.py
PIXEL_METHODS = {
    "saliency": ("saliency", False),
    "guided-backprop": ("guided_backprop", False),
    "guided-gradcam": ("guided_gradcam", True),
    "occlusion": ("occlusion", False),
}
METHODS = [*LAYER_METHODS, *PIXEL_METHODS]


def explain(model, images, layer=None, method="gradcam", target=None, normalize=True, **options):
    """Maps in [0, 1], normalized per image, at the input's resolution: (B, H, W), or (B, C, H, W) for the
    per-colour-channel methods "guided-backprop" and "guided-gradcam". With normalize=False the maps keep their
    own scale (upsampled but not min-max scaled), so a weak map for an absent class stays visibly weak.

    method: "cam" (classifier weights, forward pass only), "gradcam", "counterfactual", "gradcam++",
    "positive-gradcam" (mean of the positive gradients as weights) (maps of
    `layer`, upsampled), or the pixel-level "saliency", "guided-backprop", "guided-gradcam" (needs `layer`) and
    "occlusion" (options such as patch=8, stride=4 pass through). Arguments as for `capture`. Runs on the model's
    device, the whole batch at once.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if method in PIXEL_METHODS:
        from tinycam import pixels

        name, takes_layer = PIXEL_METHODS[method]
        args = (model, images, layer) if takes_layer else (model, images)
        if takes_layer and layer is None:
            raise ValueError(f"method {method!r} needs a layer for its Grad-CAM part, e.g. the last conv block")
        raw = getattr(pixels, name)(*args, target=target, **options)
        if not normalize:
            return raw
        flat = raw.reshape(raw.shape[0], -1, raw.shape[-1])  # min-max over all channels and pixels of an image
        return torch_reference.normalize(flat).reshape(raw.shape)
    if options:
        raise ValueError(f"method {method!r} takes no options, got {sorted(options)}")
    if layer is None:
        raise ValueError(f"method {method!r} needs a layer: pass the name of a conv layer or block, e.g. the last one")
    if method == "cam":
        _check_images(model, images)
        with _eval_mode(model):
            acts, scores = _forward(model, images, layer, need_grads=False)
            raw = torch_reference.cam(acts, _cam_weights(model, acts, scores, _targets(target, scores)))
    else:
        captured = capture(model, images, layer, target)
        raw = LAYER_METHODS[method](captured.acts, captured.grads)
    upsampled = torch_reference.upsample(raw, images.shape[-2:])
    return torch_reference.normalize(upsampled) if normalize else upsampled
