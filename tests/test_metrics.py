"""Every metric on hand-made maps and masks whose answers are known."""

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


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.pointing_game(torch.zeros(2, 3), torch.zeros(2, 3, 3)), r"maps must have shape \(B, H, W\)"),
        (lambda: metrics.energy_pointing_game(torch.zeros(2, 3, 3), torch.zeros(2, 4, 3)), "masks must have shape"),
        (lambda: metrics.instance_mass(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)), r"\(B, M, H, W\)"),
        (lambda: metrics.energy_pointing_game(-torch.ones(1, 3, 3), torch.ones(1, 3, 3)), "non-negative"),
        (lambda: metrics.average_drop(torch.tensor([0.0]), torch.tensor([0.1])), "must be positive"),
        (lambda: metrics.increase_in_confidence(torch.ones(2), torch.ones(3)), "two \\(B,\\) tensors"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
