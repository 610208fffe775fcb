"""Pixel-level methods on tiny hand-weighted models whose answers are worked out by hand, plus cross-checks."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tinycam
from tinycam import pixels

from toy_models import (
    LAST,
    assert_same_state,
    images,
    input_gradients,
    linear_model,
    model_state,
    small_cnn,
    swap_relus,
    two_relu_model,
)

# --- by hand ---------------------------------------------------------------------------------------------------


def test_saliency_of_a_linear_model_is_the_largest_absolute_weight_over_channels():
    weights = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = linear_model(weights)
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    got = pixels.saliency(model, x, target=[1, 0])
    torch.testing.assert_close(got, torch.stack([weights[1], weights[0]]).abs().amax(dim=1), rtol=0, atol=1e-15)


def test_guided_backprop_by_hand():
    x = torch.tensor([1.0, 0.5], dtype=torch.float64).reshape(1, 1, 1, 2)
    # plain gradient: both hidden units are active, so dS/dx = [1, -1]
    assert input_gradients(two_relu_model(), x, 0).flatten().tolist() == [1.0, -1.0]
    # guided: the negative gradient reaching the second ReLU is dropped
    for inplace in (False, True):
        assert pixels.guided_backprop(two_relu_model(inplace), x, 0).flatten().tolist() == [1.0, 0.0]
    # and where the forward input is negative the gradient is blocked as in plain backprop
    x_off = torch.tensor([-1.0, 0.5], dtype=torch.float64).reshape(1, 1, 1, 2)
    assert pixels.guided_backprop(two_relu_model(), x_off, 0).flatten().tolist() == [0.0, 0.0]


def test_occlusion_with_a_one_pixel_patch_on_a_linear_model_is_the_analytic_change():
    weights = torch.randn(1, 3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    got = pixels.occlusion(linear_model(weights), x, target=0, patch=1, stride=1, fill=0.25)
    expected = (weights[0] * (x - 0.25)).sum(dim=1)  # S(I) − S(I with pixel ij set to 0.25)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_occlusion_output_option_and_per_channel_fill():
    weights = torch.randn(1, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    model = linear_model(weights, activation="sigmoid")
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    fill = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).reshape(3, 1, 1)
    got = pixels.occlusion(model, x, 0, patch=1, stride=1, fill=fill, output="score")
    torch.testing.assert_close(got, (weights[0] * (x - fill)).sum(dim=1), rtol=1e-12, atol=1e-14)
    assert model.output_activation == "sigmoid"  # the option does not touch the model
    with pytest.raises(ValueError, match="output must be one of"):
        pixels.occlusion(model, x, 0, output="logits")


def test_occlusion_averages_over_overlapping_patches():
    # a 1x1 image of 3 pixels in a row, weights [1, 2, 4], patch 2, stride 1: two patches
    weights = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    model = linear_model(weights)
    x = torch.ones(1, 1, 1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="patch must be an integer from 1 to the image size 1"):
        pixels.occlusion(model, x, 0, patch=2, stride=1)
    x = torch.ones(1, 1, 2, 3, dtype=torch.float64)
    weights = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]], dtype=torch.float64).reshape(1, 1, 2, 3)
    got = pixels.occlusion(linear_model(weights), x, 0, patch=2, stride=1)
    # patch at left hides 1 + 2 = 3, patch at right hides 2 + 4 = 6; pixel (·, 1) is under both: (3 + 6) / 2
    torch.testing.assert_close(got, torch.tensor([[[3.0, 4.5, 6.0], [3.0, 4.5, 6.0]]], dtype=torch.float64))


def test_occlusion_reports_probability_drops_for_sigmoid_models():
    weights = torch.full((1, 1, 2, 2), 1.0, dtype=torch.float64)
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    got = pixels.occlusion(linear_model(weights, "sigmoid"), x, 0, patch=2, stride=1)
    torch.testing.assert_close(got, torch.full((1, 2, 2), torch.sigmoid(torch.tensor(4.0)).item() - 0.5, dtype=torch.float64))


def _occlusion_by_loops(weights, x, patch, stride, fill=0.0):
    """Occlusion of a linear score S = Σ w·I written out window by window: every window start on the regular grid,
    plus one flush with the bottom/right edge where the grid does not end there."""
    height, width = x.shape[-2:]

    def starts(size):
        regular = list(range(0, size - patch + 1, stride))
        return regular + ([size - patch] if regular[-1] != size - patch else [])

    total = torch.zeros(x.shape[0], height, width, dtype=x.dtype)
    count = torch.zeros(height, width, dtype=x.dtype)
    for top in starts(height):
        for left in starts(width):
            window = (slice(None), slice(None), slice(top, top + patch), slice(left, left + patch))
            change = (weights[0][None] * (x - fill))[window].sum(dim=(1, 2, 3))  # S(I) − S(I with the window filled)
            total[:, top : top + patch, left : left + patch] += change[:, None, None]
            count[top : top + patch, left : left + patch] += 1
    return total / count


def test_occlusion_covers_the_border_with_a_last_window_flush_with_the_edge():
    # one row of 5 pixels, weights [1, 2, 4, 8, 16], patch 2, stride 2: windows at 0 and 2 on the grid, and one at 3
    # flush with the right edge (it used to be left out, and the last pixel read 0)
    weights = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64).reshape(1, 1, 1, 5).repeat(1, 1, 2, 1)
    weights[0, 0, 1] = 0.0
    x = torch.ones(1, 1, 2, 5, dtype=torch.float64)
    got = pixels.occlusion(linear_model(weights), x, 0, patch=2, stride=2)
    # windows hide 1 + 2 = 3, 4 + 8 = 12 and 8 + 16 = 24; pixel 3 is under the last two: (12 + 24) / 2 = 18
    torch.testing.assert_close(got, torch.tensor([[3.0, 3.0, 12.0, 18.0, 24.0]] * 2, dtype=torch.float64)[None])


@pytest.mark.parametrize(
    "size, patch, stride",
    [((5, 7), 2, 2), ((5, 7), 3, 2), ((6, 6), 4, 3), ((7, 5), 3, 3), ((5, 5), 5, 1), ((6, 6), 2, 2), ((6, 6), 3, 1)],
)
def test_occlusion_on_a_linear_model_matches_the_window_by_window_formula(size, patch, stride):
    weights = torch.randn(1, 2, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    x = torch.rand(2, 2, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    got = pixels.occlusion(linear_model(weights), x, 0, patch=patch, stride=stride, fill=0.5)
    torch.testing.assert_close(got, _occlusion_by_loops(weights, x, patch, stride, 0.5), rtol=1e-12, atol=1e-13)
    assert bool((got != 0).all())  # every pixel is under a window


def test_occlusion_rejects_a_stride_larger_than_the_patch():
    # windows 1 pixel wide every 4 pixels would never hide the pixels between them, which would read 0, "no effect"
    model, x = small_cnn("fc"), images(1)
    with pytest.raises(ValueError, match="stride must be a positive integer at most the patch size 1"):
        pixels.occlusion(model, x, 0, patch=1, stride=4)
    assert bool((pixels.occlusion(model, x, 0, patch=4, stride=4) != 0).all())  # stride = patch covers every pixel


def test_occlusion_fill_is_a_number_or_one_value_per_channel():
    weights = torch.randn(1, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    model, x = linear_model(weights), torch.rand(2, 3, 4, 4, dtype=torch.float64)
    colour = [0.1, 0.5, 0.9]
    expected = (weights[0] * (x - torch.tensor(colour, dtype=torch.float64).reshape(3, 1, 1))).sum(dim=1)
    for fill in (colour, tuple(colour), np.array(colour), torch.tensor(colour), torch.tensor(colour).reshape(3, 1, 1)):
        torch.testing.assert_close(pixels.occlusion(model, x, 0, patch=1, stride=1, fill=fill), expected)
    expected = (weights[0] * (x - 0.25)).sum(dim=1)
    for fill in (0.25, np.float32(0.25), torch.tensor(0.25), torch.tensor([0.25] * 3)):
        torch.testing.assert_close(pixels.occlusion(model, x, 0, patch=1, stride=1, fill=fill), expected)


@pytest.mark.parametrize(
    "fill, message",
    [
        (float("nan"), "fill must be finite"),
        (float("inf"), "fill must be finite"),
        (torch.tensor([0.0, float("nan"), 0.0]), "fill must be finite"),
        (1e6, "fill must be finite"),  # overflows float16, the images' dtype in this case
        ([0.1, 0.2], r"fill must be a number or one value per channel, \(3,\) or \(3, 1, 1\); got shape \(2,\)"),
        (torch.zeros(3, 1), r"got shape \(3, 1\)"),
        (torch.zeros(1, 3, 1, 1), r"got shape \(1, 3, 1, 1\)"),
        (torch.zeros(3, 4, 4), r"got shape \(3, 4, 4\)"),
        (True, "fill must be a number"),
        ("grey", "fill must be a number"),
        (torch.tensor([1, 0, 1], dtype=torch.bool), "fill must be a number"),
    ],
)
def test_occlusion_rejects_a_bad_fill(fill, message):
    model, x = small_cnn("fc"), images()
    if isinstance(fill, float) and fill == 1e6:
        model, x = model.half(), x.half()
    with pytest.raises(ValueError, match=message):
        pixels.occlusion(model, x, 0, patch=4, stride=4, fill=fill)


def test_occlusion_takes_numpy_integers_and_rejects_floats_and_bools():
    model, x = small_cnn("fc"), images(2)
    expected = pixels.occlusion(model, x, 0, patch=3, stride=2, batch_size=5, progress=False)
    got = pixels.occlusion(model, x, 0, patch=np.int64(3), stride=np.int32(2), batch_size=np.int64(5), progress=False)
    assert torch.equal(got, expected)
    for name, bad in [("patch", 3.0), ("patch", True), ("stride", 2.0), ("stride", True), ("batch_size", 5.0),
                      ("batch_size", False), ("batch_size", 0), ("stride", np.float64(2))]:
        with pytest.raises(ValueError, match=f"{name} must be"):
            pixels.occlusion(model, x, 0, **{"patch": 3, "stride": 2, name: bad})


def test_occlusion_runs_without_tqdm(monkeypatch, capsys):
    # tqdm belongs to the course, not the library: without it there is no bar, unless one is asked for
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `import tqdm.auto` now raises ImportError
    model, x = small_cnn("fc"), images(1)
    got = pixels.occlusion(model, x, 0, patch=2, stride=2, batch_size=1)  # 25 batches: a bar if tqdm were there
    torch.testing.assert_close(got, pixels.occlusion(model, x, 0, patch=2, stride=2, progress=False), rtol=1e-12, atol=1e-14)
    assert capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        pixels.occlusion(model, x, 0, patch=2, stride=2, progress=True)


def test_occlusion_in_bfloat16_keeps_the_small_differences():
    # A confident linear softmax model (p_c > 0.999), the case where bfloat16 broke: p ≈ 1 is resolved only to 2^-8
    # there, and every drop used to round to exactly 0. The float64 reference runs the same model on the same
    # numbers (weights and images rounded to bfloat16 first), so the only difference left is the bfloat16 scores,
    # each off by at most half an ulp, 2^-8 · |s|. Then s_k − s_c is off by at most 2^-7 · max|s|; with p_c ≈ 1 a
    # drop is (1 − p_w) − (1 − p) with 1 − p ≈ Σ_k≠c exp(s_k − s_c), so each term moves by a factor of at most
    # exp(2^-7 · max|s|) ≈ 1 + 2^-7 · max|s|, and the map by at most 2^-7 · max|s| · (its largest value).
    weights = 0.2 * torch.randn(3, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    weights, x = weights.bfloat16().double(), x.bfloat16().double()
    scores = linear_model(weights)(x).detach()
    assert bool((scores.softmax(dim=1)[:, 0] > 0.999).all())
    reference = pixels.occlusion(linear_model(weights, "softmax"), x, 0, patch=3, stride=1)
    got = pixels.occlusion(linear_model(weights, "softmax").bfloat16(), x.bfloat16(), 0, patch=3, stride=1)
    assert got.dtype == torch.float32
    bound = 2**-7 * scores.abs().max() * reference.abs().max()
    assert float((got.double() - reference).abs().max()) <= bound
    assert float((got == 0).double().mean()) < 0.02  # it used to be all zeros


def test_occlusion_default_batch_holds_the_callers_batch_or_a_fixed_number_of_pixels():
    # batch_size=None: max(B, ⌈2^18 / (H·W)⌉) occluded images per forward pass: the caller's own batch for large
    # images, at least 2^18 pixels for small ones
    seen = []
    model = linear_model(torch.ones(1, 1, 512, 512, dtype=torch.float64))
    model.register_forward_pre_hook(lambda _module, inputs: seen.append(len(inputs[0])))
    x = torch.rand(3, 1, 512, 512, dtype=torch.float64)
    got = pixels.occlusion(model, x, 0, patch=256, stride=256, output="score")
    assert seen == [3, 3, 3, 3, 3]  # the images, then 4 windows of 3 images each
    torch.testing.assert_close(got, _occlusion_by_loops(torch.ones(1, 1, 512, 512, dtype=torch.float64), x, 256, 256))
    seen.clear()
    small = linear_model(torch.ones(1, 1, 64, 64, dtype=torch.float64))
    small.register_forward_pre_hook(lambda _module, inputs: seen.append(len(inputs[0])))
    pixels.occlusion(small, torch.rand(1, 1, 64, 64, dtype=torch.float64), 0, patch=8, stride=4)
    assert seen == [1, 64, 64, 64, 33]  # 225 windows, 64 images (2^18 pixels) per forward


def test_class_model_on_a_linear_score_follows_the_closed_form():
    # ascent on S − λ‖I‖² = w·I − λ‖I‖² from 0: I_n = w / (2λ) · (1 − (1 − 2λ·lr)^n)
    weights = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    lam, lr, n = 0.1, 0.5, 7
    got = pixels.class_model(linear_model(weights), [1, 0], shape=(1, 3, 3), steps=n, lr=lr, l2=lam)
    expected = torch.stack([weights[1], weights[0]]) / (2 * lam) * (1 - (1 - 2 * lam * lr) ** n)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_class_model_from_a_mean_image_follows_the_closed_form_around_it():
    # ascent on w·I − λ‖I − m‖² from I = m: I_n = m + w / (2λ) · (1 − (1 − 2λ·lr)^n), the zero start shifted by m
    weights = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor([[[0.2, -0.4, 0.7], [1.5, 0.0, -2.0], [0.3, 0.3, 0.9]]], dtype=torch.float64)
    lam, lr, n = 0.1, 0.5, 7
    got = pixels.class_model(linear_model(weights), [1, 0], shape=(1, 3, 3), steps=n, lr=lr, l2=lam, mean=mean)
    expected = mean + torch.stack([weights[1], weights[0]]) / (2 * lam) * (1 - (1 - 2 * lam * lr) ** n)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    # no steps: the mean itself, broadcast from one value per channel
    colour = torch.tensor([0.1, 0.5, 0.9]).reshape(3, 1, 1)
    start = pixels.class_model(small_cnn("fc"), [0, 1], shape=(3, 10, 10), steps=0, mean=colour)
    assert start.shape == (2, 3, 10, 10) and torch.equal(start, colour.double().expand(2, 3, 10, 10))


def test_class_model_pulls_toward_the_mean_not_toward_zero():
    # a model whose score ignores the image: only the regularizer acts, and it keeps the image at the mean
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1)).double()
    with torch.no_grad():
        model[1].weight.zero_()
    colour = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64).reshape(3, 1, 1)
    kwargs = dict(shape=(3, 4, 4), steps=20, lr=1.0, l2=0.1, jitter=1, blur_sigma=1.0, blur_every=2)
    torch.testing.assert_close(pixels.class_model(model, [0], mean=colour, **kwargs)[0], colour.expand(3, 4, 4),
                               rtol=0, atol=0)
    # the same run with a mean of 0 equals the default (zeros), bit for bit
    assert torch.equal(pixels.class_model(small_cnn("fc"), [2], shape=(3, 10, 10), steps=4, jitter=1, mean=0.0),
                       pixels.class_model(small_cnn("fc"), [2], shape=(3, 10, 10), steps=4, jitter=1))


def test_class_model_noise_starts_near_the_mean_and_moves_off_a_flat_point():
    # ReLU(conv) with a negative bias is off everywhere on a flat image: the gradient there is exactly 0
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(0)))
        model[0].bias.fill_(-0.05)
    flat = pixels.class_model(model, [0], shape=(3, 8, 8), steps=10, l2=0.0)
    assert bool((flat == 0).all())  # stuck at the start
    start = pixels.class_model(model, [0], shape=(3, 8, 8), steps=0, mean=0.5, noise=0.01, seed=1)
    assert 0 < (start - 0.5).abs().max() <= 0.01
    assert torch.equal(start, pixels.class_model(model, [0], shape=(3, 8, 8), steps=0, mean=0.5, noise=0.01, seed=1))
    moved = pixels.class_model(model, [0], shape=(3, 8, 8), steps=10, l2=0.0, noise=0.01, seed=1)
    with torch.no_grad():
        assert model(moved)[0, 0] > model(start - 0.5)[0, 0]
    with pytest.raises(ValueError, match="noise must be a finite number"):
        pixels.class_model(model, [0], shape=(3, 8, 8), noise=-0.1)


@pytest.mark.parametrize(
    "mean, error, message",
    [(torch.zeros(2, 1, 1), ValueError, r"mean of shape \(2, 1, 1\) does not broadcast to the image shape"),
     (torch.zeros(1, 3, 1, 1), ValueError, "at most 3 dimensions"),
     (torch.tensor([0.0, float("nan"), 0.0]).reshape(3, 1, 1), ValueError, "mean must be finite"),
     ("grey", TypeError, "mean must be None, a number or a tensor"), (True, TypeError, "mean must be None")],
)
def test_class_model_mean_is_checked(mean, error, message):
    with pytest.raises(error, match=message):
        pixels.class_model(small_cnn("fc"), [0], shape=(3, 10, 10), steps=1, mean=mean)


def test_class_model_is_deterministic_from_its_seed_and_raises_the_score():
    model = small_cnn("fc")
    kwargs = dict(shape=(3, 10, 10), steps=15, lr=0.5, jitter=1, blur_sigma=0.5, blur_every=5)
    first = pixels.class_model(model, [0, 2], seed=4, **kwargs)
    assert torch.equal(first, pixels.class_model(model, [0, 2], seed=4, **kwargs))
    assert not torch.equal(first, pixels.class_model(model, [0, 2], seed=5, **kwargs))
    with torch.no_grad():
        start = model(torch.zeros(1, 3, 10, 10, dtype=torch.float64))[0]
        end = model(first)
    assert end[0, 0] > start[0] and end[1, 2] > start[2]


# --- cross-checks ------------------------------------------------------------------------------------------------


class _SwappedGuidedReLU(nn.Module):
    """An independent guided ReLU (a custom autograd function), swapped in by the test only."""

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad.clamp(min=0) * (x > 0)

    def forward(self, x):
        return self.Fn.apply(x)


def test_guided_backprop_matches_an_independent_module_swap_on_a_random_cnn():
    model = small_cnn("fc", inplace=True)
    x, targets = images(), torch.tensor([0, 1, 2, 3])
    got = pixels.guided_backprop(model, x, target=targets)
    swapped = swap_relus(small_cnn("fc", inplace=False), _SwappedGuidedReLU)
    torch.testing.assert_close(got, input_gradients(swapped, x, targets), rtol=1e-12, atol=1e-14)
    assert not torch.equal(got, input_gradients(small_cnn("fc"), x, targets))  # it is not plain backprop


def test_saliency_is_the_max_abs_of_the_plain_input_gradient():
    model, x = small_cnn("fc"), images()
    torch.testing.assert_close(pixels.saliency(model, x, 1), input_gradients(model, x, 1).abs().amax(1), rtol=0, atol=1e-15)


def test_guided_gradcam_by_hand():
    # x (1, 1, 2, 2) = [[1, 2], [3, -4]] -> 1x1 conv to 2 channels with weights +1 and -1 -> ReLU (the layer)
    # -> GAP -> y = 1 · GAP(A¹) + 2 · GAP(A²).  A¹ = [[1, 2], [3, 0]], A² = [[0, 0], [0, 4]]
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(2, 1, bias=False)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        model[4].weight.copy_(torch.tensor([[1.0, 2.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    # Grad-CAM: ∂y/∂A^k = w_k / 4, so α = (0.25, 0.5) and L = ReLU(0.25 A¹ + 0.5 A²) = [[0.25, 0.5], [0.75, 2]]
    # (positive everywhere: a min-max normalized factor would zero the top-left pixel, the bug this guards against)
    # guided backprop: each ReLU passes 0.25 resp. 0.5 where its input is positive (A¹ where x > 0, A² where x < 0),
    # the conv maps them back with weights +1 and -1: [[0.25, 0.25], [0.25, -0.5]] (signed)
    guided = torch.tensor([[0.25, 0.25], [0.25, -0.5]], dtype=torch.float64)
    assert pixels.guided_backprop(model, x, 0)[0, 0].tolist() == guided.tolist()
    product = [[0.0625, 0.125], [0.1875, -1.0]]  # guided ⊙ L
    assert pixels.guided_gradcam(model, x, "1", 0)[0, 0].tolist() == product
    # explain shows the product min-max normalized over the image: (p + 1) / 1.1875
    shown = tinycam.explain(model, x, "1", "guided-gradcam", target=0)[0, 0]
    torch.testing.assert_close(shown, (torch.tensor(product, dtype=torch.float64) + 1) / 1.1875, rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["saliency", "guided-backprop", "guided-gradcam", "occlusion"])
def test_explain_dispatches_and_normalizes(method):
    model, x = small_cnn("fc"), images()
    options = dict(patch=3, stride=2) if method == "occlusion" else {}
    out = tinycam.explain(model, x, LAST if method == "guided-gradcam" else None, method, target=1, **options)
    assert out.shape == ((4, 3, 10, 10) if method.startswith("guided") else (4, 10, 10))
    flat = out.flatten(1)
    assert torch.allclose(flat.amin(1), torch.zeros(4, dtype=out.dtype))
    assert torch.allclose(flat.amax(1), torch.ones(4, dtype=out.dtype))


def test_occlusion_batches_do_not_change_the_answer():
    model, x = small_cnn("fc"), images()
    one = pixels.occlusion(model, x, 1, patch=3, stride=2, batch_size=1)
    many = pixels.occlusion(model, x, 1, patch=3, stride=2, batch_size=1000)
    torch.testing.assert_close(one, many, rtol=1e-12, atol=1e-14)


# --- errors and leaving the model as found ------------------------------------------------------------------------


class FunctionalRelu(nn.Module):
    def __init__(self, also_module=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3).double()
        self.act = nn.ReLU() if also_module else nn.Identity()
        self.head = nn.Linear(4, 2).double()

    def forward(self, x):
        return self.head(F.relu(self.act(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pixels.guided_backprop(FunctionalRelu(), images()), "this model has none"),
        (lambda: pixels.guided_backprop(FunctionalRelu(also_module=True), images()), "1 time\\(s\\) outside nn.ReLU"),
        (lambda: pixels.occlusion(small_cnn("fc"), images(), 0, patch=11), "patch must be an integer from 1 to the image size 10"),
        (lambda: pixels.occlusion(small_cnn("fc"), images(), 0, stride=0), "stride must be a positive integer"),
        (lambda: pixels.saliency(small_cnn("fc"), images(), target=4), "target class 4 is out of range"),
        (lambda: pixels.class_model(small_cnn("fc"), [5], shape=(3, 10, 10), steps=1), "target class 5 is out of range"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), None, "guided-gradcam"), "needs a layer"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), None, "gradcam"), "needs a layer"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), LAST, "gradcam", patch=3), "takes no options"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("method", ["saliency", "guided-backprop", "guided-gradcam", "occlusion"])
def test_model_restored_after_success(method):
    model = small_cnn("fc").train()
    model[0][0].weight.requires_grad_(False)
    before = model_state(model)
    tinycam.explain(model, images(), LAST, method)
    assert_same_state(before, model_state(model))


def test_model_restored_after_guided_backprop_raises_midway():
    model = FunctionalRelu(also_module=True).train()
    before = model_state(model)
    with pytest.raises(ValueError):
        pixels.guided_backprop(model, images())
    assert_same_state(before, model_state(model))
    # and a later plain gradient is not guided any more
    model.eval()
    torch.testing.assert_close(tinycam.capture(model, images(), None, 0).grads, input_gradients(model, images(), 0))


# --- under stress ---------------------------------------------------------------------------------------------------


def test_guided_backprop_on_a_compiled_model_is_that_of_the_model():
    model, x = small_cnn("fc"), images()
    compiled = torch.compile(model, backend="eager")
    torch.testing.assert_close(pixels.guided_backprop(compiled, x, 1), pixels.guided_backprop(model, x, 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(targets=[0.5]), "class indices"), (dict(targets=[1], lr=float("nan")), "lr must be a finite number"),
     (dict(targets=[1], steps=-1), "steps must be an integer"), (dict(targets=[1], blur_every=0), "blur_every"),
     (dict(targets=[1], l2=-1.0), "l2 must be")],
)
def test_class_model_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pixels.class_model(small_cnn("fc"), shape=(3, 10, 10), **kwargs)


def test_class_model_of_a_parameter_free_model():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # scores = mean colour per channel
    image = pixels.class_model(model, [2], shape=(3, 4, 4), steps=3, lr=1.0, l2=0.0)
    # ∂S_2/∂I = 1/16 on channel 2 only, three steps of lr 1
    assert image.dtype == torch.float32 and torch.allclose(image[0, 2], torch.full((4, 4), 3 / 16))
    assert bool((image[0, :2] == 0).all())
