"""Pixel-level methods on tiny hand-weighted models whose answers are worked out by hand, plus cross-checks."""

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


def test_class_model_on_a_linear_score_follows_the_closed_form():
    # ascent on S − λ‖I‖² = w·I − λ‖I‖² from 0: I_n = w / (2λ) · (1 − (1 − 2λ·lr)^n)
    weights = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    lam, lr, n = 0.1, 0.5, 7
    got = pixels.class_model(linear_model(weights), [1, 0], shape=(1, 3, 3), steps=n, lr=lr, l2=lam)
    expected = torch.stack([weights[1], weights[0]]) / (2 * lam) * (1 - (1 - 2 * lam * lr) ** n)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


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
