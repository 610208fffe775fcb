"""How good is a map? Localization against ground-truth masks, and faithfulness to the model's confidence.

maps: (B, H, W), non-negative (as `tinycam.explain` returns them); masks: bool, (B, H, W) for "all objects of the
class", or (B, M, H, W) for one mask per object instance. Every function is batched and returns one value per image
(or per instance); an all-zero map scores 0, never NaN.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "pointing_game",
    "energy_pointing_game",
    "instance_mass",
    "instance_peaks",
    "average_drop",
    "increase_in_confidence",
]


def _check(maps, masks, mask_ndim):
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (B, H, W), got {tuple(maps.shape)}")
    want = "(B, H, W)" if mask_ndim == 3 else "(B, M, H, W)"
    if masks.ndim != mask_ndim or masks.shape[0] != maps.shape[0] or masks.shape[-2:] != maps.shape[-2:]:
        raise ValueError(f"masks must have shape {want} matching maps {tuple(maps.shape)}, got {tuple(masks.shape)}")
    if bool((maps < 0).any()) or not bool(torch.isfinite(maps).all()):
        raise ValueError("maps must be finite and non-negative (apply the method's ReLU / normalization first)")
    return masks.to(torch.bool)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Hit when the map's maximum lies on the class's objects (Zhang et al., ECCV 2016): (B,) bool.
    An all-zero map points nowhere and misses."""
    masks = _check(maps, masks, 3)
    flat = maps.flatten(1)
    peak = flat.argmax(dim=1)
    return masks.flatten(1).gather(1, peak[:, None])[:, 0] & (flat.amax(dim=1) > 0)


def _mass(maps):
    return maps.flatten(1).sum(dim=1)


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of the map's mass inside the class's masks, Σ_ij L_ij · mask_ij / Σ_ij L_ij (Wang et al., Score-CAM,
    CVPRW 2020): (B,) in [0, 1]."""
    masks = _check(maps, masks, 3)
    total = _mass(maps)
    inside = _mass(maps * masks)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)


def instance_mass(maps: torch.Tensor, instance_masks: torch.Tensor) -> torch.Tensor:
    """Share of the map's mass on each object instance: (B, M) in [0, 1] (0 for empty slots)."""
    instance_masks = _check(maps, instance_masks, 4)
    total = _mass(maps)[:, None]
    inside = (maps[:, None] * instance_masks).flatten(2).sum(dim=2)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)


def instance_peaks(maps: torch.Tensor, instance_masks: torch.Tensor, min_height: float = 0.1) -> torch.Tensor:
    """Whether each instance contains a local maximum of the map (a pixel that is the largest of its 3×3
    neighbourhood and at least `min_height` of the image's maximum): (B, M) bool. A map "sees" an object when it
    has a peak on it, however small the object's share of the mass."""
    instance_masks = _check(maps, instance_masks, 4)
    pooled = F.max_pool2d(maps[:, None], 3, stride=1, padding=1)[:, 0]
    top = maps.flatten(1).amax(dim=1)[:, None, None]
    peaks = (maps == pooled) & (maps >= min_height * top) & (top > 0)
    return (peaks[:, None] & instance_masks).flatten(2).any(dim=2)


def _check_scores(original, masked):
    original, masked = torch.as_tensor(original), torch.as_tensor(masked)
    if original.shape != masked.shape or original.ndim != 1:
        raise ValueError(f"expected two (B,) tensors of class confidences, got {tuple(original.shape)} and {tuple(masked.shape)}")
    if bool((original <= 0).any()):
        raise ValueError("the original confidences must be positive (use probabilities, not raw scores)")
    return original, masked


def average_drop(original: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Average Drop % = 100 · mean_i max(0, Y_i − O_i) / Y_i, with Y the class confidence on the image and O on the
    image multiplied by its map (Chattopadhay et al., WACV 2018, section 5.1). Lower is better."""
    original, masked = _check_scores(original, masked)
    return 100.0 * ((original - masked).clamp(min=0) / original).mean()


def increase_in_confidence(original: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Increase in Confidence % = 100 · mean_i [Y_i < O_i]: how often showing only the explained region raises the
    class confidence (Chattopadhay et al., WACV 2018, section 5.1). Higher is better."""
    original, masked = _check_scores(original, masked)
    return 100.0 * (original < masked).to(original.dtype).mean()
