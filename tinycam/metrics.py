"""How good is a map? Localization against ground-truth masks, and faithfulness to the model's confidence.

maps: (B, H, W), finite and non-negative (as `tinycam.explain` returns them), torch or NumPy, any real dtype (integer
and bool maps are taken as float64); masks: bool or 0/1 of any dtype, (B, H, W) for "all objects of the class", or
(B, M, H, W) for one mask per object instance. Every function is batched and returns one value per image (or per
instance); an all-zero map scores 0, never NaN, and a flat map (constant, to within 1e-6 of its maximum) points nowhere.
"""

import numpy as np
import numpy.typing as npt
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


Maps = torch.Tensor | npt.NDArray[np.generic]


def _check(maps: Maps, masks: Maps, mask_ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    maps, masks = torch.as_tensor(maps), torch.as_tensor(masks)
    if not maps.is_floating_point():
        if maps.is_complex():
            raise ValueError(f"maps must be real, got {maps.dtype}")
        maps = maps.to(torch.float64)  # integer and bool maps: exact in float64
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (B, H, W), got {tuple(maps.shape)}")
    if maps.shape[1] == 0 or maps.shape[2] == 0:
        raise ValueError(f"maps must have at least one pixel, got shape {tuple(maps.shape)}")
    want = "(B, H, W)" if mask_ndim == 3 else "(B, M, H, W)"
    if masks.ndim != mask_ndim or masks.shape[0] != maps.shape[0] or masks.shape[-2:] != maps.shape[-2:]:
        raise ValueError(f"masks must have shape {want} matching maps {tuple(maps.shape)}, got {tuple(masks.shape)}")
    if bool((maps < 0).any()) or not bool(torch.isfinite(maps).all()):
        raise ValueError("maps must be finite and non-negative (apply the method's ReLU / normalization first)")
    if masks.dtype != torch.bool and not bool(((masks == 0) | (masks == 1)).all()):
        raise ValueError("masks must be boolean or 0/1; threshold soft masks first, e.g. masks > 0.5")
    return maps, masks.to(device=maps.device, dtype=torch.bool)


def _rtol(maps: torch.Tensor) -> float:
    """Values within rtol · max of each other are equal: max(1e-6, the dtype's eps). 1e-6 is about 8 float32 ulps,
    the rounding differences that float32 arithmetic (upsampling, scaling) leaves between values that are equal in
    exact arithmetic, and that differ between CPUs and kernels; in half precision one ulp is the noise floor."""
    return max(1e-6, torch.finfo(maps.dtype).eps)


def _flat(maps: torch.Tensor) -> torch.Tensor:
    """(B,) bool: max − min ≤ rtol · max (maps are non-negative, so max = max|map|): a constant map, up to rounding,
    has no peak. An all-zero map is flat."""
    flat = maps.flatten(1)
    top = flat.amax(dim=1)
    return top - flat.amin(dim=1) <= _rtol(maps) * top


def pointing_game(maps: Maps, masks: Maps) -> torch.Tensor:
    """Hit when the map's maximum lies on the class's objects (Zhang et al., ECCV 2016): (B,) bool.
    A flat map (all-zero, or constant: its argmax would be pixel (0, 0)) points nowhere and misses."""
    maps, masks = _check(maps, masks, 3)
    flat = maps.flatten(1)
    top = flat.amax(dim=1, keepdim=True)
    # the maximum: the first pixel (raster order) within rounding of the top, so a plateau of values equal up to the
    # last bit points at the same pixel on every CPU (a plain argmax would follow the rounding)
    peak = (flat >= top - _rtol(maps) * top).to(torch.uint8).argmax(dim=1)
    return masks.flatten(1).gather(1, peak[:, None])[:, 0] & ~_flat(maps)


def _mass(maps):
    return maps.flatten(1).sum(dim=1)


def energy_pointing_game(maps: Maps, masks: Maps) -> torch.Tensor:
    """Share of the map's mass inside the class's masks, Σ_ij L_ij · mask_ij / Σ_ij L_ij (Wang et al., Score-CAM,
    CVPRW 2020): (B,) in [0, 1]."""
    maps, masks = _check(maps, masks, 3)
    total = _mass(maps)
    inside = _mass(maps * masks)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)


def instance_mass(maps: Maps, instance_masks: Maps) -> torch.Tensor:
    """Share of the map's mass on each object instance: (B, M) in [0, 1] (0 for empty slots)."""
    maps, instance_masks = _check(maps, instance_masks, 4)
    total = _mass(maps)[:, None]
    inside = (maps[:, None] * instance_masks).flatten(2).sum(dim=2)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)


def instance_peaks(maps: Maps, instance_masks: Maps, min_height: float = 0.1) -> torch.Tensor:
    """Whether each instance contains a local maximum of the map (a pixel that is the largest of its 3×3
    neighbourhood and at least `min_height` of the image's maximum): (B, M) bool. A map "sees" an object when it
    has a peak on it, however small the object's share of the mass; a flat map has no peak."""
    maps, instance_masks = _check(maps, instance_masks, 4)
    pooled = F.max_pool2d(maps[:, None], 3, stride=1, padding=1)[:, 0]
    top = maps.flatten(1).amax(dim=1)[:, None, None]
    # a local maximum up to rounding: a plateau of values equal up to the last bit is a peak wherever it is
    peaks = (maps >= pooled - _rtol(maps) * top) & (maps >= min_height * top) & ~_flat(maps)[:, None, None]
    return (peaks[:, None] & instance_masks).flatten(2).any(dim=2)


Confidences = torch.Tensor | npt.NDArray[np.generic] | list[float]


def _check_scores(original: Confidences, masked: Confidences) -> tuple[torch.Tensor, torch.Tensor]:
    original, masked = torch.as_tensor(original), torch.as_tensor(masked)
    if original.shape != masked.shape or original.ndim != 1:
        raise ValueError(f"expected two (B,) tensors of class confidences, got {tuple(original.shape)} and {tuple(masked.shape)}")
    if original.numel() == 0:
        raise ValueError("no confidences were given (B = 0); pass one original and one masked confidence per image")
    if original.dtype == torch.bool or masked.dtype == torch.bool or original.is_complex() or masked.is_complex():
        raise ValueError(f"confidences must be real numbers, got {original.dtype} and {masked.dtype}")
    dtype = torch.promote_types(original.dtype, masked.dtype)
    dtype = dtype if dtype.is_floating_point else torch.float64  # integer confidences: exact in float64
    original, masked = original.to(dtype), masked.to(dtype)
    if not bool(torch.isfinite(original).all() & torch.isfinite(masked).all()):
        raise ValueError("confidences must be finite, got NaN or inf; check the model's outputs for these images")
    if bool((original <= 0).any()):
        raise ValueError("the original confidences must be positive (use probabilities, not raw scores)")
    return original, masked


def average_drop(original: Confidences, masked: Confidences) -> torch.Tensor:
    """Average Drop % = 100 · mean_i max(0, Y_i − O_i) / Y_i, with Y the class confidence on the image and O on the
    image multiplied by its map (Chattopadhay et al., WACV 2018, section 5.1). Lower is better."""
    original, masked = _check_scores(original, masked)
    return 100.0 * ((original - masked).clamp(min=0) / original).mean()


def increase_in_confidence(original: Confidences, masked: Confidences) -> torch.Tensor:
    """Increase in Confidence % = 100 · mean_i [Y_i < O_i]: how often showing only the explained region raises the
    class confidence (Chattopadhay et al., WACV 2018, section 5.1). Higher is better."""
    original, masked = _check_scores(original, masked)
    return 100.0 * (original < masked).to(original.dtype).mean()
