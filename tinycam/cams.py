"""CAM-family maps: a method is its weights. Each row of `CAM_METHODS` says how the weights come from a capture
(A, ∂y^c/∂A, the scores), per channel (B, K) or per activation (B, K, h, w); `cam_map` does the rest for all of
them: the combination Σ_k w_k A^k, the ReLU (CAM keeps none, as in Zhou et al.), the upsampling to the input's size
and the normalization. Adding a method is one weight function and one row. The equations' finiteness checks are
made once, at the end (`tinycam.finiteness`): a batch-1 map costs little more than its forward pass.

Score-CAM's weights need forward passes of their own: one per feature map and image, on the input masked by that
map, batched, through the same capture path as every other method (eval mode, the model restored after each pass).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from tinycam import torch_reference as T
from tinycam.capturing import PIXELS_PER_FORWARD, Capture, Layer, Target, batches, capture, count
from tinycam.finiteness import checked_at_the_end

__all__ = ["CAM_METHODS", "CamMethod", "cam_map", "classifier_weights", "scorecam_forward_weights"]


def classifier_weights(model: nn.Module, images: torch.Tensor, captured: Capture) -> torch.Tensor:
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


def scorecam_forward_weights(
    model: nn.Module,
    images: torch.Tensor,
    captured: Capture,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Score-CAM's α_k^c = softmax_k(y^c(X ∘ H^k) − y^c(X_b)), (B, K), from K forward passes per image on the images
    masked by their normalized, upsampled feature maps H^k, and one on the baseline X_b = 0 (a black image), with y^c
    the class's logit (Wang et al., CVPR Workshops 2020, section 4 and Algorithm 1; the equations are
    `torch_reference.scorecam_masks` and `torch_reference.scorecam_weights`).

    batch_size: masked images per forward pass; default max(B, ⌈2^18 / (H·W)⌉), as occlusion's. A progress bar
    (stderr, with tqdm) appears when there are more than 4 batches, or when progress=True (False: never)."""
    batch, n_maps = captured.acts.shape[:2]
    height, width = images.shape[-2:]
    if batch_size is None:
        batch_size = max(batch, -(-PIXELS_PER_FORWARD // (height * width)))
    batch_size = count("batch_size", batch_size, what="a positive integer (or None)")
    targets = captured.targets

    def class_scores(inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        scores = capture(model, inputs, None, classes, gradients=False).scores
        return scores.gather(1, classes[:, None])[:, 0]

    baseline = class_scores(torch.zeros_like(images), targets)  # y^c(X_b), (B,)
    masked = torch.empty(batch * n_maps, dtype=baseline.dtype, device=baseline.device)  # y^c(X ∘ H^k), image-major
    pairs = torch.arange(batch * n_maps, device=images.device)
    for start in batches(len(pairs), batch_size, progress, desc="score-cam"):
        chunk = pairs[start : start + batch_size]
        b, k = chunk // n_maps, chunk % n_maps
        masks = T.scorecam_masks(captured.acts[b, k][:, None], (height, width))  # (n, 1, H, W)
        masked[chunk] = class_scores(images[b] * masks, targets[b])
    return T.scorecam_weights(masked.reshape(batch, n_maps), baseline)


class CamMethod(NamedTuple):
    """One CAM-family method: its weights from (model, images, capture, **options), whether it needs ∂y/∂A, whether
    a ReLU follows, and the options its weights take (passed through `explain`)."""

    weights: Callable[..., torch.Tensor]
    needs_gradients: bool = True
    relu: bool = True
    options: tuple[str, ...] = ()


CAM_METHODS: dict[str, CamMethod] = {
    "cam": CamMethod(classifier_weights, needs_gradients=False, relu=False),
    "gradcam": CamMethod(lambda model, images, c: T.gradcam_weights(_grads(c))),
    "counterfactual": CamMethod(lambda model, images, c: T.counterfactual_weights(_grads(c))),
    "gradcam++": CamMethod(lambda model, images, c: T.gradcampp_weights(c.acts, _grads(c))),
    "positive-gradcam": CamMethod(lambda model, images, c: T.positive_gradcam_weights(_grads(c))),
    "hirescam": CamMethod(lambda model, images, c: T.hirescam_weights(_grads(c))),
    "layercam": CamMethod(lambda model, images, c: T.layercam_weights(_grads(c))),
    "xgradcam": CamMethod(lambda model, images, c: T.xgradcam_weights(c.acts, _grads(c))),
    "scorecam": CamMethod(scorecam_forward_weights, needs_gradients=False, options=("batch_size", "progress")),
}


def cam_map(
    model: nn.Module,
    images: torch.Tensor,
    layer: Layer,
    method: str = "gradcam",
    target: Target = None,
    normalize: bool = True,
    **options: Any,
) -> torch.Tensor:
    """The `method` map of `layer` for one class per image, upsampled to the images' size: (B, H, W), in [0, 1]
    per image when normalize=True, else at its own scale. `options` go to the method's weights (Score-CAM's
    batch_size and progress); a method without options refuses them."""
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM-family method {method!r}; choose one of {list(CAM_METHODS)}")
    row = CAM_METHODS[method]
    unknown = sorted(set(options) - set(row.options))
    if unknown:
        takes = f"takes only {list(row.options)}" if row.options else "takes no options"
        raise ValueError(f"method {method!r} {takes}, got {unknown}")
    captured = capture(model, images, layer, target, gradients=row.needs_gradients)
    combine = T.localization_map if row.relu else T.weighted_combination

    def weights_to_map() -> torch.Tensor:
        raw = combine(row.weights(model, images, captured, **options), captured.acts)
        upsampled = T.upsample(raw, images.shape[-2:])
        return T.normalize(upsampled) if normalize else upsampled

    with checked_at_the_end() as every_step_finite:  # one host sync for all the equations' checks, not one each
        maps = weights_to_map()
        if every_step_finite():
            return maps
    return weights_to_map()  # a step was not finite: again, each step checked, so the error names the step
