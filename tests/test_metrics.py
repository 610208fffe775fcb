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
