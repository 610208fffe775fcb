"""`explain`: one call for every method, CAM-family (`tinycam.cams`) or pixel-level (`tinycam.pixels`)."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tinycam import pixels
from tinycam import torch_reference as T
from tinycam.cams import CAM_METHODS, cam_map
from tinycam.capturing import Layer, Target, resolve_layer

__all__ = ["METHODS", "PIXEL_METHODS", "explain"]

# pixel-level method -> (its function, whether it takes a layer)
PIXEL_METHODS: dict[str, tuple[Callable[..., torch.Tensor], bool]] = {
    "saliency": (pixels.saliency, False),
    "guided-backprop": (pixels.guided_backprop, False),
    "guided-gradcam": (pixels.guided_gradcam, True),
    "occlusion": (pixels.occlusion, False),
}
METHODS = [*CAM_METHODS, *PIXEL_METHODS]


def explain(
    model: nn.Module,
    images: torch.Tensor,
    layer: Layer | None = None,
    method: str = "gradcam",
    target: Target = None,
    normalize: bool = True,
    **options: Any,
) -> torch.Tensor:
    """Maps in [0, 1], normalized per image, at the input's resolution: (B, H, W), or (B, C, H, W) for the
    per-colour-channel methods "guided-backprop" and "guided-gradcam". With normalize=False the maps keep their
    own scale (upsampled but not min-max scaled), so a weak map for an absent class stays visibly weak.

    method: "cam" (classifier weights, forward pass only), "gradcam", "counterfactual", "gradcam++",
    "positive-gradcam" (mean of the positive gradients as weights), "hirescam", "layercam", "xgradcam" and
    "scorecam" (gradient-free, one forward pass per feature map; options batch_size=, progress=) (maps of `layer`,
    upsampled), or the pixel-level "saliency", "guided-backprop", "guided-gradcam" (needs `layer`) and "occlusion" (options such as
    patch=8, stride=4 pass through); "saliency", "guided-backprop" and "occlusion" work on the input and ignore a
    (valid) `layer`, so one call can loop over every method. Arguments as for `tinycam.capture`. Runs on the model's device, the whole batch
    at once.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if method in PIXEL_METHODS:
        function, takes_layer = PIXEL_METHODS[method]
        if takes_layer and layer is None:
            raise ValueError(f"method {method!r} needs a layer for its Grad-CAM part, e.g. the last conv block")
        if layer is not None:
            resolve_layer(model, layer)  # a misspelt layer is an error, even for the methods that work on the input
        args = (model, images, layer) if takes_layer else (model, images)
        raw = function(*args, target=target, **options)
        if not normalize:
            return raw
        flat = raw.reshape(raw.shape[0], -1, raw.shape[-1])  # min-max over all channels and pixels of an image
        return T.normalize(flat).reshape(raw.shape)
    if layer is None:
        raise ValueError(f"method {method!r} needs a layer: pass the name of a conv layer or block, e.g. the last one")
    return cam_map(model, images, layer, method, target, normalize, **options)
