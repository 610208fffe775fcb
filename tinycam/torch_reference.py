"""The reference's equations in torch: same names, same equations, batched, on any device and dtype.

Each function here mirrors the one of the same name in `tinycam.reference` (read that file for the notation);
the tests loop over the names and compare both in float64. Tensors are shaped (..., K, H, W), typically
(B, K, h, w) for a batch of B images, and stay on their device: nothing here loops over images or moves data.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from tinycam import reference
from tinycam.finiteness import all_finite, step_finite
from tinycam.reference import NOISE_ULPS

__all__ = list(reference.__all__)  # the same names as the NumPy reference, one for one (tests compare them)


def _non_finite(name: str) -> ValueError:
    return ValueError(f"{name} contains NaN or inf values; check the model's input and output")


def _as_maps(x: torch.Tensor | ArrayLike, name: str, min_ndim: int = 3, finite: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, dtype=torch.float64)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}; convert it with .float()")
    if x.ndim < min_ndim:
        want = "(..., K, H, W)" if min_ndim == 3 else "(..., H, W)"
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)} ({x.ndim} axes)")
    if finite and not step_finite(x):
        raise _non_finite(name)
    return x


def _same_shape(acts: torch.Tensor, grads: torch.Tensor, name: str = "grads") -> tuple[torch.Tensor, torch.Tensor]:
    acts, grads = _as_maps(acts, "acts"), _as_maps(grads, name)
    if acts.shape != grads.shape:
        raise ValueError(
            f"acts and {name} must have the same shape (..., K, H, W), "
            f"got acts {tuple(acts.shape)} and {name} {tuple(grads.shape)}"
        )
    return acts, grads


def _finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """x, or a clear error when a computation overflowed its dtype (finite inputs, infinite result)."""
    if not step_finite(x):
        raise ValueError(f"{what} overflows {x.dtype}; rescale the inputs (they are finite but too large)")
    return x


def gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling: (1/Z) Σ_ij x_ij over the last two axes; (..., H, W) -> (...)."""
    return _as_maps(x, "x", min_ndim=2).mean(dim=(-2, -1))


def weighted_combination(weights: torch.Tensor | ArrayLike, acts: torch.Tensor) -> torch.Tensor:
    """L = Σ_k w_k A^k, the localization map before the ReLU; weights (..., K), acts (..., K, H, W) -> (..., H, W).
    Weights shaped like acts (one per activation, as HiResCAM's) give L = Σ_k w^k ⊙ A^k."""
    acts = _as_maps(acts, "acts")
    weights = torch.as_tensor(weights, dtype=acts.dtype, device=acts.device)
    if weights.shape not in (acts.shape[:-2], acts.shape):
        raise ValueError(
            f"weights must have shape {tuple(acts.shape[:-2])} (one per feature map of acts {tuple(acts.shape)}) "
            f"or {tuple(acts.shape)} (one per activation), got {tuple(weights.shape)}"
        )
    if not step_finite(weights):
        raise ValueError("weights contain NaN or inf values")
    if weights.shape == acts.shape:
        return _finite((weights * acts).sum(dim=-3), "the weighted combination Σ_k w_k A^k")
    return _finite(torch.einsum("...k,...kij->...ij", weights, acts), "the weighted combination Σ_k w_k A^k")


def localization_map(weights: torch.Tensor | ArrayLike, acts: torch.Tensor) -> torch.Tensor:
    """L^c = ReLU(Σ_k w_k^c A^k): the step every gradient-weighted CAM method shares (Selvaraju et al., eq. 2)."""
    return torch.relu(weighted_combination(weights, acts))


def gradcam_weights(grads: torch.Tensor) -> torch.Tensor:
    """α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij: the gradients, global-average-pooled; (..., K, H, W) -> (..., K)."""
    return gap(_as_maps(grads, "grads"))


def gradcam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """L^c_Grad-CAM = ReLU(Σ_k α_k^c A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(gradcam_weights(grads), acts)


def counterfactual_weights(grads: torch.Tensor) -> torch.Tensor:
    """w_k^c = (1/Z) Σ_ij −∂y^c/∂A^k_ij: Grad-CAM weights of the negated gradients (what argues against class c)."""
    return gradcam_weights(-_as_maps(grads, "grads"))


def counterfactual(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """The counterfactual map ReLU(Σ_k w_k^c A^k) with the negated-gradient weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(counterfactual_weights(grads), acts)


def positive_gradcam_weights(grads: torch.Tensor) -> torch.Tensor:
    """w_k^c = (1/Z) Σ_ij ReLU(∂S^c/∂A^k_ij): Grad-CAM's average over the positive gradients only (Grad-CAM++ with
    every α^kc_ij = 1/Z)."""
    return gap(torch.relu(_as_maps(grads, "grads")))


def positive_gradcam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """ReLU(Σ_k w_k^c A^k) with the positive-gradient weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(positive_gradcam_weights(grads), acts)


def cam(acts: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """M_c = Σ_k w_k^c A^k with the classifier's weights w_k^c of class c; no ReLU, as in Zhou et al. (CVPR 2016, section 2)."""
    return weighted_combination(class_weights, acts)


def cam_weights_from_gradients(grads: torch.Tensor) -> torch.Tensor:
    """w_k^c = Σ_ij ∂Y^c/∂A^k_ij (= Z·α_k^c); for a GAP + linear head it gives back the classifier's weights."""
    return _as_maps(grads, "grads").sum(dim=(-2, -1))


def gradcampp_alphas(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """α^kc_ij = g² / (2 g² + Σ_ab A^k_ab · g³), g = ∂S^c/∂A^k_ij, and 0 where the denominator is 0 (no epsilon)."""
    acts, grads = _same_shape(acts, grads)
    g2 = _finite(grads.square(), "the gradients' squares g²")
    g3 = _finite(g2 * grads, "the gradients' cubes g³")
    return gradcampp_alphas_from_derivatives(acts, g2, g3)


def gradcampp_alphas_from_derivatives(acts: torch.Tensor, d2: torch.Tensor, d3: torch.Tensor) -> torch.Tensor:
    """α^kc_ij = ∂²Y/∂(A^k_ij)² / (2 ∂²Y/∂(A^k_ij)² + Σ_ab A^k_ab ∂³Y/∂(A^k_ij)³), 0 where the denominator is 0:
    the general form, for any Y (see `tinycam.derivatives.diagonal_derivatives` for exact d2 and d3)."""
    acts, d2 = _same_shape(acts, d2, "d2")
    _, d3 = _same_shape(acts, d3, "d3")
    denominator = _finite(2.0 * d2 + acts.sum(dim=(-2, -1), keepdim=True) * d3, "Grad-CAM++'s denominator")
    return torch.where(denominator != 0, d2 / denominator, 0.0)  # the 0/0 the division leaves there is not chosen


def gradcampp_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """w_k^c = Σ_ij α^kc_ij ReLU(∂S^c/∂A^k_ij); (..., K, H, W) -> (..., K)."""
    acts, grads = _same_shape(acts, grads)
    return (gradcampp_alphas(acts, grads) * torch.relu(grads)).sum(dim=(-2, -1))


def gradcampp(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """L^c_Grad-CAM++ = ReLU(Σ_k w_k^c A^k) with the Grad-CAM++ weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(gradcampp_weights(acts, grads), acts)


def hirescam_weights(grads: torch.Tensor) -> torch.Tensor:
    """w^k_ij = ∂y^c/∂A^k_ij, one weight per activation: the map is Σ_k ∂y^c/∂A^k ⊙ A^k (Draelos & Carin, arXiv
    2011.08891, 2020, "HiResCAM"); (..., K, H, W) -> same."""
    return _as_maps(grads, "grads")


def hirescam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """L^c_HiResCAM = ReLU(Σ_k ∂y^c/∂A^k ⊙ A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(hirescam_weights(grads), acts)


def layercam_weights(grads: torch.Tensor) -> torch.Tensor:
    """w^k_ij = ReLU(∂y^c/∂A^k_ij), one weight per activation (Jiang et al., IEEE TIP 2021, "LayerCAM", section III);
    (..., K, H, W) -> same."""
    return torch.relu(_as_maps(grads, "grads"))


def layercam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """L^c_LayerCAM = ReLU(Σ_k ReLU(∂y^c/∂A^k) ⊙ A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(layercam_weights(grads), acts)


def xgradcam_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """w_k^c = Σ_ij (A^k_ij / Σ_ab A^k_ab) ∂y^c/∂A^k_ij (Fu et al., BMVC 2020, "XGrad-CAM", section 3), and 0 for a
    channel whose activations sum to 0; (..., K, H, W) -> (..., K)."""
    acts, grads = _same_shape(acts, grads)
    numerator = _finite((acts * grads).sum(dim=(-2, -1)), "XGrad-CAM's Σ_ij A^k_ij ∂y^c/∂A^k_ij")
    total = _finite(acts.sum(dim=(-2, -1)), "XGrad-CAM's Σ_ab A^k_ab")
    nonzero = total != 0
    weights = torch.where(nonzero, numerator / torch.where(nonzero, total, torch.ones_like(total)), 0.0)
    return _finite(weights, "XGrad-CAM's weights")


def xgradcam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """L^c_XGrad-CAM = ReLU(Σ_k w_k^c A^k) with the XGrad-CAM weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(xgradcam_weights(acts, grads), acts)


def scorecam_masks(acts: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """H^k = s(Up(A^k)): each feature map upsampled to `size` and min-max normalized to [0, 1], a constant one to 0
    (Wang et al., CVPR Workshops 2020, "Score-CAM", section 4); (..., K, h, w) -> (..., K, H, W)."""
    return normalize(upsample(_as_maps(acts, "acts"), size))


def scorecam_weights(
    masked_scores: torch.Tensor | ArrayLike, baseline_score: torch.Tensor | ArrayLike
) -> torch.Tensor:
    """α_k^c = softmax_k(y^c(X ∘ H^k) − y^c(X_b)), y^c the class's logit (Wang et al., CVPR Workshops 2020,
    "Score-CAM", section 4 and Algorithm 1); masked_scores (..., K), baseline_score (...) -> (..., K). The baseline
    cancels in the softmax (see `reference.scorecam_weights`)."""
    if not isinstance(masked_scores, torch.Tensor):
        masked_scores = torch.as_tensor(masked_scores, dtype=torch.float64)
    if not masked_scores.is_floating_point():
        raise ValueError(f"masked_scores must be a floating-point tensor, got {masked_scores.dtype}; use .float()")
    baseline_score = torch.as_tensor(baseline_score, dtype=masked_scores.dtype, device=masked_scores.device)
    if masked_scores.ndim < 1 or masked_scores.shape[-1] == 0 or baseline_score.shape != masked_scores.shape[:-1]:
        raise ValueError(
            "masked_scores must have shape (..., K), one score per feature map (K ≥ 1), and baseline_score the "
            f"shape (...) before K; got masked_scores {tuple(masked_scores.shape)} and baseline_score "
            f"{tuple(baseline_score.shape)}"
        )
    for values, name in ((masked_scores, "masked_scores"), (baseline_score, "baseline_score")):
        if not step_finite(values):
            raise ValueError(f"{name} contains NaN or inf values; check the model's output")
    increase = _finite(masked_scores - baseline_score[..., None], "the increase of confidence y(X ∘ H) − y(X_b)")
    return torch.softmax(increase, dim=-1)


def normalize(m: torch.Tensor) -> torch.Tensor:
    """(m − min m) / (max m − min m) per map over the last two axes. A constant map, or one whose span is rounding
    noise (≤ NOISE_ULPS · eps · max |m|, eps of m's dtype), becomes all zeros. When a span overflows (±1e308), the
    maps larger than 1 are halved first (exact), as the NumPy twin always does."""
    m = _as_maps(m, "m", min_ndim=2, finite=False)  # a NaN or inf in m makes its span non-finite: checked there
    low, high = m.amin(dim=(-2, -1), keepdim=True), m.amax(dim=(-2, -1), keepdim=True)  # (aminmax: 10x slower)
    span = high - low
    if not step_finite(span):
        if not all_finite(m):
            raise _non_finite("m")
        halve = torch.maximum(low.abs(), high.abs()) > 1
        m, low, high = m / (1 + halve), low / (1 + halve), high / (1 + halve)
        span = high - low
    noise = torch.maximum(high, -low).mul_(NOISE_ULPS * torch.finfo(m.dtype).eps)  # max(high, −low) = max |m|
    return (m - low).div_(torch.where(span > noise, span, torch.inf))  # no signal: (m − low) / ∞ = 0


def upsample(m: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of the last two axes to `size` = (H_out, W_out): F.interpolate(mode="bilinear",
    align_corners=False), i.e. half-pixel centres, the convention `reference.upsample` reproduces."""
    m = _as_maps(m, "m", min_ndim=2)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H_out, W_out) with positive integers, got {size!r}")
    flat = m.reshape(-1, 1, *m.shape[-2:])
    out = F.interpolate(flat, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)
    return out.reshape(*m.shape[:-2], *out.shape[-2:])
