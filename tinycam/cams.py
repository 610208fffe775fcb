"""CAM-family maps: a method is its weights. Each row of `CAM_METHODS` says how the weights come from a capture
(A, ∂y^c/∂A, the scores), per channel (B, K) or per activation (B, K, h, w); `cam_map` does the rest for all of
them: the combination Σ_k w_k A^k, the ReLU (CAM keeps none, as in Zhou et al.), the upsampling to the input's size
and the normalization. Adding a method is one weight function and one row.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from tinycam import torch_reference as T
from tinycam.capturing import Capture, Layer, Target, capture

__all__ = ["CAM_METHODS", "CamMethod", "cam_map", "classifier_weights"]


def classifier_weights(model: nn.Module, captured: Capture) -> torch.Tensor:
    """The classifier's w_k^c of each target class, (B, K), after checking that y = W · GAP(A) + b holds for this
    model and layer, the architecture CAM needs (Zhou et al., CVPR 2016, section 2)."""
    pooled = T.gap(captured.acts)  # (B, K)
    for module in reversed(list(model.modules())):
        if isinstance(module, nn.Linear) and module.in_features == pooled.shape[1]:
            with torch.no_grad():
                predicted = module(pooled)
            if predicted.shape == captured.scores.shape and torch.allclose(
                predicted, captured.scores, rtol=1e-4, atol=1e-4
            ):
                return module.weight.detach()[captured.targets]
    raise ValueError(
        "CAM needs a model whose scores are a linear layer applied to the global average pooling of this layer's "
        f"{pooled.shape[1]} feature maps (Zhou et al.), and this model/layer is not one; use method='gradcam', which "
        "works for any architecture"
    )


def _grads(captured: Capture) -> torch.Tensor:
    assert captured.grads is not None, "this method's row asks for gradients"
    return captured.grads


class CamMethod(NamedTuple):
    """One CAM-family method: its weights from (model, capture), whether it needs ∂y/∂A, whether a ReLU follows."""

    weights: Callable[[nn.Module, Capture], torch.Tensor]
    needs_gradients: bool = True
    relu: bool = True


CAM_METHODS: dict[str, CamMethod] = {
    "cam": CamMethod(classifier_weights, needs_gradients=False, relu=False),
    "gradcam": CamMethod(lambda model, c: T.gradcam_weights(_grads(c))),
    "counterfactual": CamMethod(lambda model, c: T.counterfactual_weights(_grads(c))),
    "gradcam++": CamMethod(lambda model, c: T.gradcampp_weights(c.acts, _grads(c))),
    "positive-gradcam": CamMethod(lambda model, c: T.positive_gradcam_weights(_grads(c))),
}


def cam_map(
    model: nn.Module,
    images: torch.Tensor,
    layer: Layer,
    method: str = "gradcam",
    target: Target = None,
    normalize: bool = True,
) -> torch.Tensor:
    """The `method` map of `layer` for one class per image, upsampled to the images' size: (B, H, W), in [0, 1]
    per image when normalize=True, else at its own scale."""
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM-family method {method!r}; choose one of {list(CAM_METHODS)}")
    row = CAM_METHODS[method]
    captured = capture(model, images, layer, target, gradients=row.needs_gradients)
    combine = T.localization_map if row.relu else T.weighted_combination
    raw = combine(row.weights(model, captured), captured.acts)
    upsampled = T.upsample(raw, images.shape[-2:])
    return T.normalize(upsampled) if normalize else upsampled
