"""Every metric on hand-made maps and masks whose answers are known."""

import numpy as np
import pytest
import torch

from tinycam import metrics


def blank(h=4, w=5):
    return torch.zeros(1, h, w)


def box(h, w, top, left, bottom, right):
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    mask[0, top:bottom, left:right] = True
    return mask


def test_pointing_game_hits_and_misses():
    maps = blank().repeat(3, 1, 1)
    maps[0, 1, 1] = 1.0  # peak on the object
    maps[1, 3, 4] = 1.0  # peak off the object
    masks = box(4, 5, 0, 0, 2, 2).repeat(3, 1, 1)
    assert metrics.pointing_game(maps, masks).tolist() == [True, False, False]  # an all-zero map misses


def test_energy_pointing_game():
    maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
    masks = torch.tensor([[[True, False], [True, False]]])
    assert metrics.energy_pointing_game(maps, masks).tolist() == [0.75]
    assert metrics.energy_pointing_game(torch.zeros(1, 2, 2), masks).tolist() == [0.0]


def test_instance_mass_and_peaks():
    # one big object with a broad bump, one small object with a narrow low peak, one empty slot
    maps = torch.zeros(1, 6, 6)
    maps[0, 0:3, 0:3] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    maps[0, 5, 5] = 0.5
    instances = torch.zeros(1, 3, 6, 6, dtype=torch.bool)
    instances[0, 0, 0:3, 0:3] = True
    instances[0, 1, 5, 5] = True
    mass = metrics.instance_mass(maps, instances)
    torch.testing.assert_close(mass, torch.tensor([[16 / 16.5, 0.5 / 16.5, 0.0]]))
    assert metrics.instance_peaks(maps, instances).tolist() == [[True, True, False]]
    # with a higher bar the small peak (0.5 < 0.2 · 4) no longer counts
    assert metrics.instance_peaks(maps, instances, min_height=0.2).tolist() == [[True, False, False]]
    assert metrics.instance_peaks(torch.zeros(1, 6, 6), instances).tolist() == [[False, False, False]]


def test_average_drop_and_increase_in_confidence_by_hand():
    original = torch.tensor([0.8, 0.5, 0.4, 0.9])
    masked = torch.tensor([0.4, 0.6, 0.4, 0.0])
    # drops: 0.4/0.8 = 0.5, 0 (it rose), 0, 0.9/0.9 = 1  -> mean 0.375
    assert metrics.average_drop(original, masked).item() == pytest.approx(37.5)
    assert metrics.increase_in_confidence(original, masked).item() == pytest.approx(25.0)


def test_confidences_may_be_array_likes():
    assert metrics.average_drop([0.8, 0.5], np.array([0.4, 0.6])).item() == pytest.approx(25.0)
    assert metrics.increase_in_confidence(np.array([0.8, 0.5]), [0.4, 0.6]).item() == pytest.approx(50.0)


@pytest.mark.parametrize("metric", [metrics.average_drop, metrics.increase_in_confidence])
@pytest.mark.parametrize(
    "original, masked, message",
    [
        (torch.zeros(0), torch.zeros(0), "no confidences"),
        ([], [], "no confidences"),
        ([0.5, float("nan")], [0.4, 0.4], "must be finite"),
        ([0.5, 0.5], [0.4, float("nan")], "must be finite"),
        ([0.5, 0.5], [float("inf"), 0.4], "must be finite"),
        ([float("inf"), 0.5], [0.4, 0.4], "must be finite"),
    ],
)
def test_confidence_metrics_reject_empty_and_non_finite_input(metric, original, masked, message):
    with pytest.raises(ValueError, match=message):
        metric(original, masked)


def test_integer_bool_and_numpy_maps_and_masks_are_accepted():
    maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
    masks = torch.tensor([[[True, False], [True, False]]])
    for as_maps in (maps.to(torch.int64), maps.numpy(), maps.to(torch.uint8)):
        for as_masks in (masks, masks.numpy(), masks.to(torch.float32), masks.to(torch.uint8), masks.to(torch.int64)):
            assert metrics.energy_pointing_game(as_maps, as_masks).tolist() == [0.75]
            assert metrics.pointing_game(as_maps, as_masks).tolist() == [True]
            assert metrics.instance_mass(as_maps, as_masks[:, None]).tolist() == [[0.75]]
            assert metrics.instance_peaks(as_maps, as_masks[:, None]).tolist() == [[True]]
    bool_maps = torch.tensor([[[False, True], [False, False]]])
    assert metrics.energy_pointing_game(bool_maps, masks).tolist() == [0.0]
    assert metrics.pointing_game(bool_maps, ~masks).tolist() == [True]


def test_soft_masks_are_rejected():
    maps = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="masks must be boolean or 0/1"):
        metrics.energy_pointing_game(maps, torch.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="masks must be boolean or 0/1"):
        metrics.instance_mass(maps, torch.full((1, 1, 2, 2), float("nan")))


def test_a_flat_map_points_nowhere():
    # an object covering pixel (0, 0), where argmax of a constant map lands
    masks = box(4, 5, 0, 0, 2, 2)
    instances = masks[:, None]
    for value in (1.0, 1e-30, 7.0):
        flat = torch.full((1, 4, 5), value)
        assert metrics.pointing_game(flat, masks).tolist() == [False]
        assert metrics.instance_peaks(flat, instances).tolist() == [[False]]
    # rounding noise within 1e-6 of the map's maximum is still flat
    noisy = torch.full((1, 4, 5), 1.0, dtype=torch.float64)
    noisy[0, 0, 0] += 1e-9
    assert metrics.pointing_game(noisy, masks).tolist() == [False]
    assert metrics.instance_peaks(noisy, instances).tolist() == [[False]]
    # a real peak, however small, counts; and a flat map next to one in the batch does not change it
    peaked = torch.full((2, 4, 5), 1.0)
    peaked[1, 1, 1] = 1.001
    assert metrics.pointing_game(peaked, masks.repeat(2, 1, 1)).tolist() == [False, True]
    assert metrics.instance_peaks(peaked, instances.repeat(2, 1, 1, 1)).tolist() == [[False], [True]]
    # a flat bfloat16 map with a one-ulp wobble is flat too (the tolerance is at least the dtype's resolution)
    wobble = torch.full((1, 4, 5), 1.0, dtype=torch.bfloat16)
    wobble[0, 0, 0] = 1.0078125  # 1 + 2^-7, the next bfloat16 above 1
    assert metrics.pointing_game(wobble, masks).tolist() == [False]


def test_an_all_zero_map_scores_zero_everywhere_never_nan():
    masks = box(4, 5, 0, 0, 2, 2)
    for zeros in (torch.zeros(1, 4, 5), torch.zeros(1, 4, 5, dtype=torch.int64), np.zeros((1, 4, 5))):
        assert metrics.pointing_game(zeros, masks).tolist() == [False]
        assert metrics.energy_pointing_game(zeros, masks).tolist() == [0.0]
        assert metrics.instance_mass(zeros, masks[:, None]).tolist() == [[0.0]]
        assert metrics.instance_peaks(zeros, masks[:, None]).tolist() == [[False]]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.pointing_game(torch.zeros(2, 3), torch.zeros(2, 3, 3)), r"maps must have shape \(B, H, W\)"),
        (lambda: metrics.energy_pointing_game(torch.zeros(2, 3, 3), torch.zeros(2, 4, 3)), "masks must have shape"),
        (lambda: metrics.instance_mass(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)), r"\(B, M, H, W\)"),
        (lambda: metrics.energy_pointing_game(-torch.ones(1, 3, 3), torch.ones(1, 3, 3)), "non-negative"),
        (lambda: metrics.pointing_game(torch.zeros(1, 0, 3), torch.zeros(1, 0, 3)), "at least one pixel"),
        (lambda: metrics.pointing_game(torch.zeros(1, 2, 2, dtype=torch.complex64), torch.zeros(1, 2, 2)), "real"),
        (lambda: metrics.average_drop(torch.tensor([True]), torch.tensor([0.1])), "real numbers"),
        (lambda: metrics.average_drop(torch.tensor([0.0]), torch.tensor([0.1])), "must be positive"),
        (lambda: metrics.increase_in_confidence(torch.ones(2), torch.ones(3)), "two \\(B,\\) tensors"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_plateau_equal_up_to_rounding_points_at_the_same_pixel_whichever_bit_is_larger():
    # the top row is a plateau whose values differ in float32's last bit, the way CPUs' kernels leave them;
    # the object covers only its right half
    mask = torch.zeros(1, 2, 4, dtype=torch.bool)
    mask[0, 0, 2:] = True
    hits = []
    for bump in range(4):
        maps = torch.full((1, 2, 4), 0.5)
        maps[0, 0] = 1.0
        maps[0, 0, bump] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))
        hits.append(bool(metrics.pointing_game(maps, mask)))
        peaks = metrics.instance_peaks(maps, mask[:, None])
        assert bool(peaks.all()), bump  # the plateau is a peak, on the object too
    assert hits == [False] * 4  # the first pixel of the plateau, off the object, every time


# ---------------------------------------------------------------------------------------------------------------
# similarity of two maps: Spearman's rank correlation and SSIM, worked out by hand


def test_average_ranks_share_the_mean_rank_of_ties():
    ranks = metrics.average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0]]))
    assert ranks.tolist() == [[2.5, 0.0, 2.5, 1.0], [2.0, 2.0, 2.0, 0.0]]


def test_spearman_by_hand():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    # 1 − 6 Σd² / (n(n² − 1)) = 1 − 12/60; with a tie, ranks (0, 1.5, 1.5, 3) against (0, 1, 2, 3):
    # cov 4.5 / sqrt(4.5 · 5) = sqrt(0.9); reversed order: −1
    expected = [0.8, 0.9**0.5, -1.0]
    assert metrics.spearman(a, b).tolist() == pytest.approx(expected, abs=1e-12)
    assert metrics.spearman(a[:, None, :], b[:, None, :]).tolist() == pytest.approx(expected, abs=1e-12)  # any (B, ...)


def test_spearman_with_and_without_absolute_values():
    signed = torch.tensor([[-3.0, 1.0, 2.0, -4.0]])
    ranks = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # signed ranks (1, 2, 3, 0): d = (1, 1, 1, −3), Σd² = 12, ρ = 1 − 72/60; |values| ranks (2, 0, 1, 3): Σd² = 6
    assert metrics.spearman(signed, ranks).item() == pytest.approx(-0.2, abs=1e-12)
    assert metrics.spearman(signed, ranks, absolute=True).item() == pytest.approx(0.4, abs=1e-12)


def test_spearman_agrees_with_scipy_on_random_maps_with_ties():
    from scipy import stats

    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 7, 8), generator=generator).double()  # many ties
    b = torch.randn(6, 7, 8, generator=generator, dtype=torch.float64).round(decimals=1)
    expected = [stats.spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(6)]
    torch.testing.assert_close(metrics.spearman(a, b), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


def test_spearman_of_a_constant_map_is_zero():
    maps = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64).repeat(4, 1)
    constant = torch.tensor([[0.0] * 4, [7.0] * 4, [7.0, 7.0 + 1e-9, 7.0, 7.0 + 2e-9], [1.0, 2.0, 3.0, 4.0]],
                            dtype=torch.float64)
    assert metrics.spearman(maps, constant).tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0], abs=1e-15)
    assert metrics.spearman(maps, constant)[:3].tolist() == [0.0, 0.0, 0.0]  # rounding noise is no ranking
    assert metrics.spearman(torch.zeros(1, 4), torch.zeros(1, 4)).tolist() == [0.0]  # even against itself


@pytest.mark.parametrize("a, b, message", [
    (torch.zeros(2, 3, 3), torch.zeros(2, 3, 4), "same shape"),
    (torch.tensor([[1.0, float("nan")]]), torch.ones(1, 2), "NaN or inf"),
    (torch.zeros(0, 3), torch.zeros(0, 3), "at least one value"),
    (torch.zeros(3), torch.zeros(3), "at least one value"),
    (torch.zeros(1, 2, dtype=torch.complex64), torch.zeros(1, 2, dtype=torch.complex64), "real"),
])
def test_spearman_refuses_bad_maps(a, b, message):
    with pytest.raises(ValueError, match=message):
        metrics.spearman(a, b)


C1, C2 = 0.01**2, 0.03**2


def test_ssim_by_hand_on_one_window():
    x = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    # μx = μy = 0.5, σx² = σy² = 0.25; y orthogonal (σxy = 0), y = 1 − x (σxy = −0.25), y = x (σxy = 0.25)
    orthogonal = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    assert metrics.ssim(x, orthogonal, window=2, sigma=None).item() == pytest.approx(C2 / (0.5 + C2), rel=1e-12)
    assert metrics.ssim(x, 1 - x, window=2, sigma=None).item() == pytest.approx((-0.5 + C2) / (0.5 + C2), rel=1e-12)
    assert metrics.ssim(x, x, window=2, sigma=None).item() == pytest.approx(1.0, rel=1e-12)
    # constant maps: the luminance term alone; equal blanks are identical, a blank against a white map is not
    blank, white = torch.zeros(1, 2, 2), torch.ones(1, 2, 2)
    assert metrics.ssim(blank, blank, window=2, sigma=None).item() == 1.0
    assert metrics.ssim(blank, white, window=2, sigma=None).item() == pytest.approx(C1 / (1 + C1), rel=1e-12)


def test_ssim_averages_the_windows_that_fit():
    x = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
    y = x.clone()
    y[0, 2, 2] = 1.0  # changes one of the four 2×2 windows only: the bottom-right one, ((1, 1), (0, 1)) vs ((1, 1), (0, 0))
    # that window: μx = 0.5, μy = 0.75, σx² = 0.25, σy² = 0.1875, σxy = 0.5 − 0.375 = 0.125
    changed = (2 * 0.5 * 0.75 + C1) * (2 * 0.125 + C2) / ((0.25 + 0.5625 + C1) * (0.25 + 0.1875 + C2))
    assert metrics.ssim(x, y, window=2, sigma=None).item() == pytest.approx((3 + changed) / 4, rel=1e-12)


def test_ssim_agrees_with_a_scipy_gaussian_filter_on_random_maps():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    x, y = rng.random((20, 24)), rng.random((20, 24))
    y = 0.5 * x + 0.5 * y  # related maps: SSIM well inside (0, 1)

    def local_mean(z):  # Wang et al.'s 11-tap σ = 1.5 window (truncated at 3.5 σ), valid positions only
        return ndimage.gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]

    mx, my = local_mean(x), local_mean(y)
    vx, vy, cxy = local_mean(x * x) - mx**2, local_mean(y * y) - my**2, local_mean(x * y) - mx * my
    expected = np.mean((2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    assert metrics.ssim(x[None], y[None]).item() == pytest.approx(expected, rel=1e-10)
    # (B, C, H, W): the channels' mean
    both = metrics.ssim(np.stack([x, x])[None], np.stack([y, x])[None]).item()
    assert both == pytest.approx((expected + 1) / 2, rel=1e-10)


@pytest.mark.parametrize("a, b, kwargs, message", [
    (torch.zeros(1, 4, 4), torch.full((1, 4, 4), 2.0), {"window": 3}, r"\[0, data_range\]"),
    (torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), {}, "smaller side 4"),
    (torch.zeros(1, 16), torch.zeros(1, 16), {}, r"\(B, H, W\)"),
    (torch.zeros(1, 4, 4), torch.zeros(1, 4, 5), {"window": 3}, "same shape"),
    (torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), {"window": 3, "data_range": 0}, "data_range must be a positive number"),
])
def test_ssim_refuses_bad_input(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.ssim(a, b, **kwargs)
