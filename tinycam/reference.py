"""The lecture's arithmetic in plain NumPy (float64): the reference every other implementation is checked against.

Notation (one table for all the decks):

=========================  ==========================================================================
``acts``   A^k_ij          the K feature maps of the chosen layer, shape (..., K, H, W)
``grads``  ∂y^c/∂A^k_ij    gradient of the class score y^c with respect to each activation, same shape
``weights`` α_k^c / w_k^c  one weight per feature map, shape (..., K). The Grad-CAM weight is called α_k^c
                           in the worked example and the Grad-CAM slides (001, 002) and w_k^c in 003/004.
                           Element-wise methods weigh every activation: weights shaped like acts.
``alphas`` α^kc_ij         Grad-CAM++'s per-pixel weights (003's notation), shape (..., K, H, W)
Z                          the number of pixels of one feature map, H·W
=========================  ==========================================================================

Leading batch axes are allowed everywhere: the maps of B images are arrays of shape (B, K, H, W).
Bad input raises ValueError naming the expected shapes.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "gap",
    "gradcam_weights",
    "weighted_combination",
    "localization_map",
    "gradcam",
    "counterfactual_weights",
    "counterfactual",
    "positive_gradcam_weights",
    "positive_gradcam",
    "cam",
    "cam_weights_from_gradients",
    "gradcampp_alphas",
    "gradcampp_alphas_from_derivatives",
    "gradcampp_weights",
    "gradcampp",
    "hirescam_weights",
    "hirescam",
    "layercam_weights",
    "layercam",
    "xgradcam_weights",
    "xgradcam",
    "scorecam_masks",
    "scorecam_weights",
    "normalize",
    "upsample",
]


# ---------------------------------------------------------------------------------------------------------------
# input checks


def _as_maps(x: ArrayLike, name: str, min_ndim: int = 3) -> np.ndarray:
    """Return `x` as a finite float64 array with at least `min_ndim` axes, or raise ValueError saying what was wanted."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < min_ndim:
        want = "(..., K, H, W)" if min_ndim == 3 else "(..., H, W)"
        raise ValueError(f"{name} must have shape {want}, got shape {x.shape} ({x.ndim} axes)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf values; check the model's input and output")
    return x


def _same_shape(acts: ArrayLike, grads: ArrayLike, name: str = "grads") -> tuple[np.ndarray, np.ndarray]:
    acts, grads = _as_maps(acts, "acts"), _as_maps(grads, name)
    if acts.shape != grads.shape:
        raise ValueError(
            f"acts and {name} must have the same shape (..., K, H, W), got acts {acts.shape} and {name} {grads.shape}"
        )
    return acts, grads


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    """x, or a clear error when a computation overflowed float64 (finite inputs, infinite result)."""
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} overflows float64; rescale the inputs (they are finite but too large)")
    return x


# ---------------------------------------------------------------------------------------------------------------
# pooling and combination


def gap(x: ArrayLike) -> np.ndarray:
    """Global average pooling: (1/Z) Σ_ij x_ij over the last two axes; (..., H, W) -> (...)."""
    x = _as_maps(x, "x", min_ndim=2)
    return x.mean(axis=(-2, -1))


def weighted_combination(weights: ArrayLike, acts: ArrayLike) -> np.ndarray:
    """L = Σ_k w_k A^k, the localization map before the ReLU; weights (..., K), acts (..., K, H, W) -> (..., H, W).
    Weights shaped like acts (one per activation, as HiResCAM's) give L = Σ_k w^k ⊙ A^k."""
    acts = _as_maps(acts, "acts")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape not in (acts.shape[:-2], acts.shape):
        raise ValueError(
            f"weights must have shape {acts.shape[:-2]} (one per feature map of acts {acts.shape}) "
            f"or {acts.shape} (one per activation), got {weights.shape}"
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights contain NaN or inf values")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as a ValueError
        combined = (weights * acts).sum(axis=-3) if weights.shape == acts.shape else np.einsum(
            "...k,...kij->...ij", weights, acts)
    return _finite(combined, "the weighted combination Σ_k w_k A^k")


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def localization_map(weights: ArrayLike, acts: ArrayLike) -> np.ndarray:
    """L^c = ReLU(Σ_k w_k^c A^k): the step every gradient-weighted CAM method shares; the methods differ only in
    their weights (Selvaraju et al., ICCV 2017, eq. 2)."""
    return _relu(weighted_combination(weights, acts))


# ---------------------------------------------------------------------------------------------------------------
# Grad-CAM (Selvaraju et al., ICCV 2017, eqs. 1-2) and its counterfactual


def gradcam_weights(grads: ArrayLike) -> np.ndarray:
    """α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij: the gradients, global-average-pooled; (..., K, H, W) -> (..., K)."""
    return gap(_as_maps(grads, "grads"))


def gradcam(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """L^c_Grad-CAM = ReLU(Σ_k α_k^c A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(gradcam_weights(grads), acts)


def counterfactual_weights(grads: ArrayLike) -> np.ndarray:
    """w_k^c = (1/Z) Σ_ij −∂y^c/∂A^k_ij: Grad-CAM weights of the negated gradients (what argues against class c)."""
    return gradcam_weights(-_as_maps(grads, "grads"))


def counterfactual(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """The counterfactual map ReLU(Σ_k w_k^c A^k) with the negated-gradient weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(counterfactual_weights(grads), acts)


def positive_gradcam_weights(grads: ArrayLike) -> np.ndarray:
    """w_k^c = (1/Z) Σ_ij ReLU(∂S^c/∂A^k_ij): Grad-CAM's average over the positive gradients only. It is Grad-CAM++
    with every α^kc_ij replaced by 1/Z — what α normalized by its spatial sum becomes on a GAP network."""
    return gap(_relu(_as_maps(grads, "grads")))


def positive_gradcam(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """ReLU(Σ_k w_k^c A^k) with the positive-gradient weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(positive_gradcam_weights(grads), acts)


# ---------------------------------------------------------------------------------------------------------------
# CAM (Zhou et al., CVPR 2016) and the CAM -> Grad-CAM derivation


def cam(acts: ArrayLike, class_weights: ArrayLike) -> np.ndarray:
    """M_c = Σ_k w_k^c A^k with the classifier's weights w_k^c of class c; no ReLU, as in Zhou et al. (CVPR 2016, section 2)."""
    return weighted_combination(class_weights, acts)


def cam_weights_from_gradients(grads: ArrayLike) -> np.ndarray:
    """w_k^c = Σ_ij ∂Y^c/∂A^k_ij. For Y^c = Σ_k w_k^c (1/Z) Σ_ij A^k_ij this gives back the classifier's weights.

    It equals Z·α_k^c: Grad-CAM's weight is the CAM weight divided by the constant Z, so the maps agree up to scale.
    """
    return _as_maps(grads, "grads").sum(axis=(-2, -1))


# ---------------------------------------------------------------------------------------------------------------
# Grad-CAM++ (Chattopadhay et al., WACV 2018, sections 3.1-3.4)


def gradcampp_alphas(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """α^kc_ij = g² / (2 g² + Σ_ab A^k_ab · g³), with g = ∂S^c/∂A^k_ij, and 0 where the denominator is 0.

    Exact when Y^c = exp(S^c) and S^c is piecewise linear in A: then ∂²Y/∂A² = exp(S) g², ∂³Y/∂A³ = exp(S) g³
    and exp(S) cancels. No epsilon is added to the denominator: an absolute 1e-6 changes the answer when g is small.
    """
    acts, grads = _same_shape(acts, grads)
    with np.errstate(over="ignore"):  # an overflow is reported by _finite, as a ValueError
        g2, g3 = grads**2, grads**3
    return gradcampp_alphas_from_derivatives(acts, _finite(g2, "the gradients' squares g²"),
                                             _finite(g3, "the gradients' cubes g³"))


def gradcampp_alphas_from_derivatives(acts: ArrayLike, d2: ArrayLike, d3: ArrayLike) -> np.ndarray:
    """The general form, before any assumption on the network (Chattopadhay et al., section 3.2, with Y^c):
    α^kc_ij = ∂²Y/∂(A^k_ij)² / (2 ∂²Y/∂(A^k_ij)² + Σ_ab A^k_ab ∂³Y/∂(A^k_ij)³), and 0 where the denominator is 0.
    With Y = exp(S), S piecewise linear in A: d2 = exp(S) g², d3 = exp(S) g³, and this is `gradcampp_alphas`."""
    acts, d2 = _same_shape(acts, d2, "d2")
    _, d3 = _same_shape(acts, d3, "d3")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _finite, as a ValueError
        denominator = 2.0 * d2 + acts.sum(axis=(-2, -1), keepdims=True) * d3
    _finite(denominator, "Grad-CAM++'s denominator")
    return np.divide(d2, denominator, out=np.zeros_like(d2), where=denominator != 0.0)


def gradcampp_weights(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """w_k^c = Σ_ij α^kc_ij ReLU(∂S^c/∂A^k_ij); (..., K, H, W) -> (..., K)."""
    acts, grads = _same_shape(acts, grads)
    return (gradcampp_alphas(acts, grads) * _relu(grads)).sum(axis=(-2, -1))


def gradcampp(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """L^c_Grad-CAM++ = ReLU(Σ_k w_k^c A^k) with the Grad-CAM++ weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(gradcampp_weights(acts, grads), acts)


# ---------------------------------------------------------------------------------------------------------------
# the methods after the lecture: HiResCAM, LayerCAM, XGrad-CAM (gradients) and Score-CAM (forward passes only)


def hirescam_weights(grads: ArrayLike) -> np.ndarray:
    """w^k_ij = ∂y^c/∂A^k_ij: the gradients themselves, one weight per activation, not averaged over the map, so
    the map is Σ_k ∂y^c/∂A^k ⊙ A^k (Draelos & Carin, arXiv 2011.08891, 2020, "HiResCAM"); (..., K, H, W) -> same.
    For a CNN whose layer is followed by flatten and one linear layer, Σ_ij of that map (before the ReLU) is
    y^c − b^c: the score decomposes over the locations, which Grad-CAM's averaged weights do not."""
    return _as_maps(grads, "grads")


def hirescam(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """L^c_HiResCAM = ReLU(Σ_k ∂y^c/∂A^k ⊙ A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(hirescam_weights(grads), acts)


def layercam_weights(grads: ArrayLike) -> np.ndarray:
    """w^k_ij = ReLU(∂y^c/∂A^k_ij): the positive gradients, one weight per activation (Jiang et al., IEEE TIP 2021,
    "LayerCAM", section III); (..., K, H, W) -> same. Per-location weights keep the fine detail of shallow layers."""
    return _relu(_as_maps(grads, "grads"))


def layercam(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """L^c_LayerCAM = ReLU(Σ_k ReLU(∂y^c/∂A^k) ⊙ A^k); (..., K, H, W) -> (..., H, W)."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(layercam_weights(grads), acts)


def xgradcam_weights(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """w_k^c = Σ_ij (A^k_ij / Σ_ab A^k_ab) ∂y^c/∂A^k_ij: the gradients averaged with the activations' own
    proportions, the weights that best satisfy the sensitivity and conservation axioms (Fu et al., BMVC 2020,
    "XGrad-CAM", section 3); (..., K, H, W) -> (..., K).
    A channel whose activations sum to 0 (e.g. all zero after a ReLU) gets weight 0: its proportions A/ΣA are
    undefined, and it adds nothing to Σ_k w_k A^k when it is zero everywhere."""
    acts, grads = _same_shape(acts, grads)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _finite, as a ValueError
        numerator = _finite((acts * grads).sum(axis=(-2, -1)), "XGrad-CAM's Σ_ij A^k_ij ∂y^c/∂A^k_ij")
        total = _finite(acts.sum(axis=(-2, -1)), "XGrad-CAM's Σ_ab A^k_ab")
        weights = np.divide(numerator, total, out=np.zeros_like(numerator), where=total != 0.0)
    return _finite(weights, "XGrad-CAM's weights")


def xgradcam(acts: ArrayLike, grads: ArrayLike) -> np.ndarray:
    """L^c_XGrad-CAM = ReLU(Σ_k w_k^c A^k) with the XGrad-CAM weights."""
    acts, grads = _same_shape(acts, grads)
    return localization_map(xgradcam_weights(acts, grads), acts)


def scorecam_masks(acts: ArrayLike, size: Sequence[int]) -> np.ndarray:
    """H^k = s(Up(A^k)): each feature map upsampled (bilinear) to the input's `size` = (H, W) and min-max normalized to
    [0, 1], the mask Score-CAM multiplies the input by (Wang et al., CVPR Workshops 2020, "Score-CAM", section 4).
    A constant feature map gives a zero mask (see `normalize`); (..., K, h, w) -> (..., K, H, W)."""
    return normalize(upsample(_as_maps(acts, "acts"), size))


def scorecam_weights(masked_scores: ArrayLike, baseline_score: ArrayLike) -> np.ndarray:
    """α_k^c = softmax_k(y^c(X ∘ H^k) − y^c(X_b)): the increase of the class score (the logit, before any softmax
    over classes) when the input is masked by H^k rather than replaced by the baseline X_b, made positive and
    summing to 1 over the K channels by a softmax (Wang et al., CVPR Workshops 2020, "Score-CAM", section 4 and
    Algorithm 1). masked_scores (..., K), baseline_score (...) -> (..., K).
    A softmax does not change when the same number is added to all its inputs, so the baseline score cancels: the
    weights depend on the masked scores alone (it is kept here because it is the paper's definition). The paper's
    Algorithm 1 scores the logit, as here; the authors' first code release used the softmax probability of the class
    and no softmax over k (TorchCAM and pytorch-grad-cam follow the paper's logit and softmax over k)."""
    masked_scores = np.asarray(masked_scores, dtype=np.float64)
    baseline_score = np.asarray(baseline_score, dtype=np.float64)
    if masked_scores.ndim < 1 or masked_scores.shape[-1] == 0 or baseline_score.shape != masked_scores.shape[:-1]:
        raise ValueError(
            "masked_scores must have shape (..., K), one score per feature map (K ≥ 1), and baseline_score the "
            f"shape (...) before K; got masked_scores {masked_scores.shape} and baseline_score {baseline_score.shape}"
        )
    for values, name in ((masked_scores, "masked_scores"), (baseline_score, "baseline_score")):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or inf values; check the model's output")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _finite, as a ValueError
        increase = _finite(masked_scores - baseline_score[..., None], "the increase of confidence y(X ∘ H) − y(X_b)")
        exponentials = np.exp(increase - increase.max(axis=-1, keepdims=True))  # shifted by the largest: at most 1
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------
# display helpers


# a span within this many ulps of the map's magnitude is rounding noise (e.g. bilinear ripples on a constant map)
NOISE_ULPS = 16


def normalize(m: ArrayLike) -> np.ndarray:
    """(m − min m) / (max m − min m) per map over the last two axes. A constant map, or one whose span is rounding
    noise (≤ NOISE_ULPS · eps · max |m|), becomes all zeros: never NaN, never noise stretched to [0, 1].
    Maps larger than 1 are halved first (exact), so a span of ±1e308 does not overflow."""
    m = _as_maps(m, "m", min_ndim=2)
    half = m / np.where(np.abs(m).max(axis=(-2, -1), keepdims=True) > 1.0, 2.0, 1.0)
    low = half.min(axis=(-2, -1), keepdims=True)
    high = half.max(axis=(-2, -1), keepdims=True)
    span = high - low
    signal = span > NOISE_ULPS * np.finfo(np.float64).eps * np.maximum(np.abs(low), np.abs(high))
    return np.divide(half - low, span, out=np.zeros_like(half), where=signal)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D linear interpolation weights, half-pixel centres (align_corners=False)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)  # torch clamps below at 0; above, the right neighbour is the edge itself
    left = np.floor(src).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = src - left
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, left), 1.0 - frac)
    np.add.at(matrix, (rows, right), frac)
    return matrix


def upsample(m: ArrayLike, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of the last two axes to `size` = (H_out, W_out), as torch's
    F.interpolate(m, size, mode="bilinear", align_corners=False): M_out = R_H · M · R_Wᵀ, one matrix per axis."""
    m = _as_maps(m, "m", min_ndim=2)
    if np.ndim(size) != 1 or len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H_out, W_out) with positive integers, got {size!r}")
    rows = _bilinear_matrix(m.shape[-2], int(size[0]))
    cols = _bilinear_matrix(m.shape[-1], int(size[1]))
    return rows @ m @ cols.T
