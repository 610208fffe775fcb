"""Pixel-level methods on tiny hand-weighted models whose answers are worked out by hand, plus cross-checks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tinycam
from tinycam import pixels


def linear_model(weights, activation="score"):
    """S = Σ_cij w_c,ij · I_c,ij (+ 0): every attribution has a closed form."""
    classes, channels, height, width = weights.shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, classes, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(weights.reshape(classes, -1))
    model.output_activation = activation
    return model.eval()


def two_relu_model(inplace=False):
    """x (1, 1, 1, 2) -> identity linear -> ReLU -> [1, -1] -> score: guided backprop drops the negative path."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.ReLU(inplace=inplace), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
    return model.double().eval()


def random_cnn(inplace=True, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(6, 6, 3, padding=1, stride=2),
        nn.ReLU(inplace=inplace), nn.Flatten(), nn.Linear(6 * 4 * 4, 8), nn.ReLU(inplace=inplace), nn.Linear(8, 3),
    ).double().eval()


def images(batch=3, seed=1):
    return torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


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
    assert pixels._input_gradients(two_relu_model(), x, 0).flatten().tolist() == [1.0, -1.0]
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
    model = random_cnn()
    kwargs = dict(shape=(3, 8, 8), steps=15, lr=0.5, jitter=1, blur_sigma=0.5, blur_every=5)
    first = pixels.class_model(model, [0, 2], seed=4, **kwargs)
    assert torch.equal(first, pixels.class_model(model, [0, 2], seed=4, **kwargs))
    assert not torch.equal(first, pixels.class_model(model, [0, 2], seed=5, **kwargs))
    with torch.no_grad():
        start = model(torch.zeros(1, 3, 8, 8, dtype=torch.float64))[0]
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
    model = random_cnn(inplace=True)
    x = images()
    got = pixels.guided_backprop(model, x, target=[0, 1, 2])
    swapped = random_cnn(inplace=False)
    for i, module in enumerate(swapped):
        if isinstance(module, nn.ReLU):
            swapped[i] = _SwappedGuidedReLU()
    expected = pixels._input_gradients(swapped, x, [0, 1, 2])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    assert not torch.equal(got, pixels._input_gradients(random_cnn(), x, [0, 1, 2]))  # it is not plain backprop


def test_saliency_is_the_max_abs_of_the_plain_input_gradient():
    model, x = random_cnn(), images()
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[:, 1].sum(), leaf)
    torch.testing.assert_close(pixels.saliency(model, x, 1), grad.abs().amax(1), rtol=0, atol=1e-15)


def test_guided_gradcam_is_the_product_of_its_parts():
    model, x = random_cnn(), images()
    expected = pixels.guided_backprop(model, x, 2) * tinycam.explain(model, x, "3", "gradcam", 2)[:, None]
    torch.testing.assert_close(pixels.guided_gradcam(model, x, "3", 2), expected, rtol=0, atol=0)


@pytest.mark.parametrize("method", ["saliency", "guided-backprop", "guided-gradcam", "occlusion"])
def test_explain_dispatches_and_normalizes(method):
    model, x = random_cnn(), images()
    options = dict(patch=3, stride=2) if method == "occlusion" else {}
    out = tinycam.explain(model, x, "3" if method == "guided-gradcam" else None, method, target=0, **options)
    assert out.shape == ((3, 3, 8, 8) if method.startswith("guided") else (3, 8, 8))
    flat = out.flatten(1)
    assert torch.allclose(flat.amin(1), torch.zeros(3, dtype=out.dtype)) and torch.allclose(flat.amax(1), torch.ones(3, dtype=out.dtype))


def test_occlusion_batches_do_not_change_the_answer():
    model, x = random_cnn(), images()
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
        (lambda: pixels.occlusion(random_cnn(), images(), 0, patch=9), "patch must be an integer from 1 to the image size 8"),
        (lambda: pixels.occlusion(random_cnn(), images(), 0, stride=0), "stride must be a positive integer"),
        (lambda: pixels.saliency(random_cnn(), images(), target=3), "target class 3 is out of range"),
        (lambda: pixels.class_model(random_cnn(), [5], shape=(3, 8, 8), steps=1), "target class 5 is out of range"),
        (lambda: tinycam.explain(random_cnn(), images(), None, "guided-gradcam"), "needs a layer"),
        (lambda: tinycam.explain(random_cnn(), images(), None, "gradcam"), "needs a layer"),
        (lambda: tinycam.explain(random_cnn(), images(), "3", "gradcam", patch=3), "takes no options"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _state(model):
    return (
        [(id(m), type(m), getattr(m, "inplace", None), m.training, dict(m._forward_hooks), dict(m._forward_pre_hooks))
         for m in model.modules()],
        [(p.requires_grad, p.grad) for p in model.parameters()],
    )


@pytest.mark.parametrize("method", ["saliency", "guided-backprop", "guided-gradcam", "occlusion"])
def test_model_restored_after_success(method):
    model = random_cnn().train()
    model[0].weight.requires_grad_(False)
    before = _state(model)
    tinycam.explain(model, images(), "3", method)
    assert _state(model) == before


def test_model_restored_after_guided_backprop_raises_midway():
    model = FunctionalRelu(also_module=True).train()
    before = _state(model)
    with pytest.raises(ValueError):
        pixels.guided_backprop(model, images())
    assert _state(model) == before
    # and a later plain gradient is not guided any more
    leaf = images().requires_grad_(True)
    model.eval()
    (grad,) = torch.autograd.grad(model(leaf)[:, 0].sum(), leaf)
    torch.testing.assert_close(pixels._input_gradients(model, images(), 0), grad)
