"""How good is a map? Localization against ground-truth masks, faithfulness to the model's confidence, and how
alike two maps are (the sanity checks' similarity measures, `spearman` and `ssim`).

maps: (B, H, W), finite and non-negative (as `tinycam.explain` returns them), torch or NumPy, any real dtype (integer
and bool maps are taken as float64); masks: bool or 0/1 of any dtype, (B, H, W) for "all objects of the class", or
(B, M, H, W) for one mask per object instance. Every function is batched and returns one value per image (or per
instance); an all-zero map scores 0, never NaN, and a flat map (constant, to within 1e-6 of its maximum) points nowhere.
The similarity measures compare two batches of maps of one shape: `spearman` any (B, ...) signed maps, `ssim` maps in
[0, data_range].
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
    "average_ranks",
    "spearman",
    "ssim",
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


# ---------------------------------------------------------------------------------------------------------------
# how alike two maps are: the similarity measures of the sanity checks (Adebayo et al., NeurIPS 2018, section 3)


def _pair(maps_a: Maps, maps_b: Maps, name: str, min_ndim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of maps of one shape (B, ...), as float64 tensors on one device; NaN, inf, complex, empty refused."""
    a, b = torch.as_tensor(maps_a), torch.as_tensor(maps_b)
    if a.is_complex() or b.is_complex():
        raise ValueError(f"{name}: maps must be real, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"{name}: the two batches of maps must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}; compare maps of the same images at the same resolution")
    if a.ndim < min_ndim or a.shape[0] == 0 or a[0].numel() == 0:
        want = "(B, H, W) or (B, C, H, W)" if min_ndim == 3 else "(B, ...) with at least one value per map"
        raise ValueError(f"{name}: maps must have shape {want}, got {tuple(a.shape)}")
    a, b = a.to(torch.float64), b.to(device=a.device, dtype=torch.float64)
    if not bool(torch.isfinite(a).all() & torch.isfinite(b).all()):
        raise ValueError(f"{name}: maps contain NaN or inf; every value must be finite (check the method's output)")
    return a, b


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Rank of each value within its row, 0 for the smallest, (B, N) -> (B, N) float64; tied values share the
    average of the ranks they occupy (the "fractional ranking" Spearman's coefficient uses with ties): ranks of
    [3, 1, 3, 2] are [2.5, 0, 2.5, 1]."""
    values = torch.as_tensor(values)
    batch, n = values.shape
    ordered, order = values.sort(dim=1, stable=True)
    new_group = torch.ones_like(ordered, dtype=torch.bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = new_group.cumsum(dim=1) - 1 + n * torch.arange(batch, device=values.device)[:, None]  # global group id
    position = torch.arange(n, dtype=torch.float64, device=values.device).expand(batch, n)
    total = torch.zeros(batch * n, dtype=torch.float64, device=values.device).index_add_(0, group.flatten(), position.flatten())
    count = torch.zeros(batch * n, dtype=torch.float64, device=values.device).index_add_(
        0, group.flatten(), torch.ones(batch * n, dtype=torch.float64, device=values.device))
    mean_rank = (total / count.clamp(min=1))[group]  # (B, N), in sorted order
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def _constant(flat: torch.Tensor) -> torch.Tensor:
    """(B,) bool: max − min ≤ 1e-6 · max |value| (an all-zero map included), the module's flat-map rule for signed
    values: its order is rounding noise, so it has no ranking to compare."""
    top = flat.abs().amax(dim=1)
    return flat.amax(dim=1) - flat.amin(dim=1) <= 1e-6 * top


def spearman(maps_a: Maps, maps_b: Maps, absolute: bool = False) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps, ρ = cov(R_a, R_b) / (σ(R_a) σ(R_b)), the Pearson
    correlation of their pixel ranks R (ties: average rank, `average_ranks`); absolute=True ranks |map| instead,
    as the two variants of Adebayo et al. (NeurIPS 2018, "Sanity Checks for Saliency Maps", section 3).

    maps: two batches of one shape (B, ...), e.g. (B, H, W) or (B, C, H, W), every value of a map counted as one
    pixel; signed maps are fine. Returns (B,) float64 in [−1, 1]. A constant map (all its values within 1e-6 of its
    largest magnitude, an all-zero map included) ranks no pixel above another, so its ρ (0 / 0) is undefined: it is
    defined here as 0, "no evidence of agreement", also with another constant map. A sanity check then scores a
    method whose map goes blank after randomization as changed, never as NaN."""
    a, b = _pair(maps_a, maps_b, "spearman")
    a, b = a.flatten(1), b.flatten(1)
    if absolute:
        a, b = a.abs(), b.abs()
    ranks_a, ranks_b = average_ranks(a), average_ranks(b)
    ranks_a = ranks_a - ranks_a.mean(dim=1, keepdim=True)
    ranks_b = ranks_b - ranks_b.mean(dim=1, keepdim=True)
    norms = ranks_a.norm(dim=1) * ranks_b.norm(dim=1)
    constant = _constant(a) | _constant(b) | (norms == 0)
    rho = (ranks_a * ranks_b).sum(dim=1) / torch.where(constant, 1.0, norms)
    return torch.where(constant, 0.0, rho.clamp(-1.0, 1.0))


SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al.'s constants: C1 = (K1 · L)², C2 = (K2 · L)²


def _window(size: int, sigma: float | None) -> torch.Tensor:
    """The local window's weights (size,), summing to 1: Gaussian of std sigma, or uniform for sigma=None."""
    if sigma is None:
        return torch.full((size,), 1.0 / size, dtype=torch.float64)
    taps = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    return weights / weights.sum()


def ssim(maps_a: Maps, maps_b: Maps, data_range: float = 1.0, window: int = 11, sigma: float | None = 1.5) -> torch.Tensor:
    """Mean structural similarity of each pair of maps (Wang et al., IEEE TIP 2004, eqs. 13, 14 and 17):
    SSIM(x, y) = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)) with local means, variances
    and covariance weighted by a `window` × `window` Gaussian of std `sigma` (the paper's 11 × 11, σ = 1.5; uniform
    for sigma=None), C1 = (0.01 L)², C2 = (0.03 L)², L = `data_range`, averaged over every position where the window
    fits inside the map (the paper's "valid" positions, no padding).

    maps: two batches of one shape, (B, H, W) or (B, C, H, W) (channels averaged), with values in [0, data_range]:
    normalize them first (e.g. `tinycam.explain`'s maps are in [0, 1]). Returns (B,) float64, 1 for identical maps.
    Two constant maps get the luminance term alone (the structure terms are C2 / C2 = 1), so two equal blank maps
    score 1 and a blank map against a bright one scores near 0."""
    a, b = _pair(maps_a, maps_b, "ssim", min_ndim=3)
    if a.ndim not in (3, 4):
        raise ValueError(f"ssim: maps must have shape (B, H, W) or (B, C, H, W), got {tuple(a.shape)}")
    if not (isinstance(data_range, int | float) and not isinstance(data_range, bool) and data_range > 0):
        raise ValueError(f"ssim: data_range must be a positive number (the maps' value range L), got {data_range!r}")
    if bool((a < 0).any() | (b < 0).any() | (a > data_range).any() | (b > data_range).any()):
        raise ValueError(f"ssim: map values must lie in [0, data_range] = [0, {data_range}]; normalize the maps first "
                         "(tinycam.explain(..., normalize=True) gives [0, 1]) or pass their data_range")
    height, width = a.shape[-2:]
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= min(height, width):
        raise ValueError(f"ssim: window must be an integer from 1 to the maps' smaller side {min(height, width)}, "
                         f"got {window!r}; pass a smaller window for small maps")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"ssim: sigma must be positive (or None for a uniform window), got {sigma!r}")
    x, y = a.reshape(-1, 1, height, width), b.reshape(-1, 1, height, width)
    line = _window(window, sigma).to(x.device)
    kernel = (line[:, None] * line[None, :])[None, None]

    def local_mean(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, kernel)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.reshape(a.shape[0], -1).mean(dim=1)
