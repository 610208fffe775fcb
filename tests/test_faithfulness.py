"""Deletion and insertion curves (tinycam.faithfulness) on a linear model of 2×2 images whose curves are worked out by
hand: S = Σ_ij w_ij I_ij, so removing a pixel of the all-ones image takes its weight off the score."""

import math

import pytest
import torch
from torch import nn

from tinycam import faithfulness

from toy_models import assert_same_state, linear_model, model_state, small_cnn
from toy_models import images as random_images

ONES = torch.ones(1, 1, 2, 2, dtype=torch.float64)


def model_with(weights, activation="score"):
    return linear_model(torch.tensor(weights, dtype=torch.float64).reshape(1, 1, 2, 2), activation)


def test_deletion_curve_by_hand():
    model = model_with([[4.0, 3.0], [2.0, 1.0]])
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]], dtype=torch.float64)
    curves = faithfulness.deletion_curve(model, ONES, maps, steps=4)
    assert curves.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curves.probabilities.tolist() == [[10.0, 6.0, 3.0, 1.0, 0.0]]  # 10, then −4, −3, −2, −1
    # trapezoids of width 1/4: (10 + 6)/2 + (6 + 3)/2 + (3 + 1)/2 + (1 + 0)/2 = 15, times 1/4
    assert curves.auc.tolist() == [3.75]


def test_insertion_curve_by_hand_from_a_black_image():
    model = model_with([[4.0, 3.0], [2.0, 1.0]])
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]], dtype=torch.float64)
    curves = faithfulness.insertion_curve(model, ONES, maps, steps=4, baseline=0.0)
    assert curves.probabilities.tolist() == [[0.0, 4.0, 7.0, 9.0, 10.0]]
    assert curves.auc.tolist() == [(2 + 5.5 + 8 + 9.5) / 4]


def test_steps_that_do_not_divide_the_pixels():
    model = model_with([[4.0, 3.0], [2.0, 1.0]])
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]], dtype=torch.float64)
    curves = faithfulness.deletion_curve(model, ONES, maps, steps=3)
    # ⌊k·4/3⌋ = 0, 1, 2, 4 pixels removed
    assert curves.fractions.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert curves.probabilities.tolist() == [[10.0, 6.0, 3.0, 0.0]]
    assert curves.auc.item() == pytest.approx(0.25 * 8 + 0.25 * 4.5 + 0.5 * 1.5, abs=1e-15)


def test_ties_are_removed_in_raster_order():
    model = model_with([[1.0, 2.0], [3.0, 4.0]])
    flat = torch.ones(1, 2, 2, dtype=torch.float64)
    assert faithfulness.deletion_curve(model, ONES, flat, steps=4).probabilities.tolist() == [[10.0, 9.0, 7.0, 4.0, 0.0]]
    # two tied pairs: (0, 1) before (1, 0), then (0, 0) before (1, 1)
    pairs = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    assert faithfulness.deletion_curve(model, ONES, pairs, steps=4).probabilities.tolist() == [[10.0, 8.0, 5.0, 4.0, 0.0]]
    assert faithfulness.deletion_order(pairs).tolist() == [[[2, 0], [1, 3]]]
    assert faithfulness.deletion_order(pairs.float()).tolist() == faithfulness.deletion_order(pairs).tolist()


def test_probabilities_follow_the_models_output_activation():
    model = model_with([[4.0, 3.0], [2.0, 1.0]], activation="sigmoid")
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]], dtype=torch.float64)
    curves = faithfulness.deletion_curve(model, ONES - 0.5, maps, steps=2)  # scores 5, 1.5, 0
    assert curves.probabilities[0].tolist() == pytest.approx([1 / (1 + math.exp(-s)) for s in (5.0, 1.5, 0.0)])
    raw = faithfulness.deletion_curve(model, ONES - 0.5, maps, steps=2, output="score")
    assert raw.probabilities.tolist() == [[5.0, 1.5, 0.0]]


def test_batched_over_images_and_forward_passes():
    model = small_cnn()
    x = random_images(5)
    maps = torch.rand(5, 10, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    whole = faithfulness.deletion_curve(model, x, maps, target=[0, 1, 2, 3, 0], steps=7)
    pieces = faithfulness.deletion_curve(model, x, maps, target=[0, 1, 2, 3, 0], steps=7, batch_size=3)
    torch.testing.assert_close(whole.probabilities, pieces.probabilities, rtol=1e-12, atol=1e-15)
    one = faithfulness.deletion_curve(model, x[2:3], maps[2:3], target=2, steps=7)
    torch.testing.assert_close(whole.probabilities[2:3], one.probabilities, rtol=1e-12, atol=1e-15)
    # the ends: the intact image (softmax of its scores), and the all-black one
    with torch.no_grad():
        intact = model(x).softmax(dim=1)[torch.arange(5), torch.tensor([0, 1, 2, 3, 0])]
        black = model(torch.zeros_like(x)).softmax(dim=1)[torch.arange(5), torch.tensor([0, 1, 2, 3, 0])]
    torch.testing.assert_close(whole.probabilities[:, 0], intact)
    torch.testing.assert_close(whole.probabilities[:, -1], black)


def test_insertion_starts_from_the_blurred_image_and_ends_at_the_image():
    model = small_cnn()
    x = random_images(2)
    maps = torch.rand(2, 10, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    curves = faithfulness.insertion_curve(model, x, maps, target=1, steps=5)
    with torch.no_grad():
        blurred = model(faithfulness.blur(x)).softmax(dim=1)[:, 1]
        intact = model(x).softmax(dim=1)[:, 1]
    torch.testing.assert_close(curves.probabilities[:, 0], blurred)
    torch.testing.assert_close(curves.probabilities[:, -1], intact)


def test_blur_is_rise_s_gaussian():
    flat = torch.full((1, 3, 6, 6), 0.3, dtype=torch.float64)
    torch.testing.assert_close(faithfulness.blur(flat), flat)  # replicated edges keep a flat image flat
    dot = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    dot[0, 0, 10, 10] = 1.0
    blurred = faithfulness.blur(dot)[0, 0]
    # separable: value ∝ g(dy) g(dx) with g(t) = exp(−t²/50); 11 taps reach 5 pixels, no further
    assert (blurred[10, 10] / blurred[10, 11]).item() == pytest.approx(math.exp(1 / 50), rel=1e-12)
    assert (blurred[10, 10] / blurred[13, 14]).item() == pytest.approx(math.exp((9 + 16) / 50), rel=1e-12)
    assert blurred[10, 15].item() > 0 and blurred[10, 16].item() == 0
    assert blurred.sum().item() == pytest.approx(1.0, rel=1e-12)


def test_area_under_curve_is_the_trapezoid_rule():
    fractions = torch.tensor([0.0, 0.5, 1.0])
    curves = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    assert faithfulness.area_under_curve(fractions, curves).tolist() == [1.0, 0.25, 0.5]


def test_the_model_is_left_as_found():
    model = small_cnn(batchnorm=True, inplace=True)
    model.train()
    model[0][0].weight.requires_grad_(False)
    model[1][2].register_forward_hook(lambda module, inputs, output: None)
    before = model_state(model)
    x = random_images(3)
    maps = torch.rand(3, 10, 10, dtype=torch.float64)
    faithfulness.deletion_curve(model, x, maps, steps=4)
    faithfulness.insertion_curve(model, x, maps, steps=4)
    assert_same_state(before, model_state(model))
    with pytest.raises(ValueError):
        faithfulness.deletion_curve(model, x, maps, target=7, steps=4)  # a class the model does not have
    assert_same_state(before, model_state(model))


@pytest.mark.parametrize("maps, kwargs, message", [
    (torch.rand(2, 3, 10, 10), {}, "reduce per-colour-channel maps first"),
    (torch.rand(2, 5, 5), {}, "upsample the maps"),
    (torch.full((2, 10, 10), float("nan")), {}, "NaN or inf"),
    (torch.rand(2, 10, 10), {"steps": 0}, r"steps must be an integer from 1 to the number of pixels \(100\)"),
    (torch.rand(2, 10, 10), {"steps": 101}, "from 1 to the number of pixels"),
    (torch.rand(2, 10, 10), {"batch_size": 0}, "batch_size must be a positive integer"),
    (torch.rand(2, 10, 10), {"output": "logits"}, "output must be one of"),
    (torch.rand(2, 10, 10), {"baseline": torch.zeros(4)}, "baseline must be a number or broadcast"),
])
def test_bad_input_is_refused_with_the_fix(maps, kwargs, message):
    model = small_cnn()
    with pytest.raises(ValueError, match=message):
        faithfulness.deletion_curve(model, random_images(2), maps.double(), **kwargs)


def test_insertion_accepts_another_baseline():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False)).double()
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    model.output_activation = "score"
    curves = faithfulness.insertion_curve(model, ONES, torch.ones(1, 2, 2, dtype=torch.float64), steps=2, baseline=0.5)
    assert curves.probabilities.tolist() == [[2.0, 3.0, 4.0]]
