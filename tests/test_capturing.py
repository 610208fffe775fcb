"""The capture path on small random CNNs: gradients equal full-graph autograd, targets, the model left exactly as it
was (also after errors), errors that teach."""

import pytest
import torch
from torch import nn

import tinycam
from tinycam.explaining import METHODS

from toy_models import LAST, assert_same_state, full_graph_gradients, images, model_state, small_cnn


@pytest.mark.parametrize("head", ["gap", "fc"])
@pytest.mark.parametrize("inplace", [True, False])
def test_capture_equals_full_graph_autograd(head, inplace):
    model = small_cnn(head, inplace=False).eval()
    x, targets = images(), [0, 3, 1, 2]
    acts_full, grads_full, scores_full = full_graph_gradients(model, x, LAST, targets)
    if inplace:
        model = small_cnn(head, inplace=True).eval()
    got = tinycam.capture(model, x, LAST, target=targets)
    torch.testing.assert_close(got.acts, acts_full.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(got.grads, grads_full, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.scores, scores_full.detach(), rtol=0, atol=1e-12)
    assert got.targets.tolist() == targets


def test_capture_before_an_inplace_relu():
    # the layer is the conv whose output the next (in-place) ReLU overwrites: the leaf must stay intact
    model = small_cnn("fc", inplace=True).eval()
    reference_model = small_cnn("fc", inplace=False).eval()
    x = images()
    got = tinycam.capture(model, x, "0.3", target=1)
    acts, grads, _ = full_graph_gradients(reference_model, x, "0.3", [1] * 4)
    torch.testing.assert_close(got.acts, acts.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(got.grads, grads, rtol=1e-10, atol=1e-12)
    assert bool((got.acts < 0).any())  # pre-ReLU values survived


def test_target_forms():
    model, x = small_cnn().eval(), images()
    predicted = tinycam.capture(model, x, LAST).targets
    assert predicted.tolist() == model(x).argmax(1).tolist()
    assert tinycam.capture(model, x, LAST, target=2).targets.tolist() == [2] * 4
    assert tinycam.capture(model, x, LAST, target=torch.tensor([3, 2, 1, 0])).targets.tolist() == [3, 2, 1, 0]


# --- the model is left exactly as it was --------------------------------------------------------------------------


def awkward_model():
    """Mixed training flags, a frozen layer, a user's own hook and BatchNorm running statistics."""
    model = small_cnn("gap", batchnorm=True).train()
    model[1].eval()
    model[0][0].weight.requires_grad_(False)
    model[0][3].register_forward_hook(lambda m, i, o: None)
    return model


@pytest.mark.parametrize("method", sorted(METHODS))
def test_model_state_is_restored_after_success(method):
    model = awkward_model()
    before = model_state(model)
    tinycam.explain(model, images(), LAST, method)
    assert_same_state(before, model_state(model))


@pytest.mark.parametrize(
    "kwargs",
    [dict(target=99), dict(target=[0, 1]), dict(layer="1.2"), dict(method="cam", layer="0.1")],
    ids=["target out of range", "wrong number of targets", "layer not a feature map", "cam on wrong layer"],
)
def test_model_state_is_restored_after_an_error(kwargs):
    model = awkward_model()
    before = model_state(model)
    kwargs = {"layer": LAST, **kwargs}
    with pytest.raises(ValueError):
        tinycam.explain(model, images(), **kwargs)
    assert_same_state(before, model_state(model))


def test_model_state_is_restored_when_the_forward_pass_itself_raises():
    model = awkward_model()

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model[1].append(Boom())
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        tinycam.capture(model, images(), LAST)
    assert_same_state(before, model_state(model))
    assert torch.is_grad_enabled()


def test_no_parameter_grad_is_written_and_nothing_before_the_layer_is_recorded():
    model = small_cnn("fc").eval()
    recorded = []
    # an op before the layer would save tensors for backward if the graph were recorded there
    with torch.autograd.graph.saved_tensors_hooks(lambda t: recorded.append(t.shape) or t, lambda t: t):
        tinycam.capture(model, images(), LAST)
    assert all(p.grad is None for p in model.parameters())
    # only the head after the layer saves tensors; the two convolutions' inputs (B, 3, 10, 10) are never saved
    assert (4, 3, 10, 10) not in recorded and len(recorded) > 0


# --- errors that teach ------------------------------------------------------------------------------------------


class Ignores(nn.Module):
    """Computes a feature map but the score does not depend on it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3).double()
        self.unused = nn.Conv2d(3, 4, 3).double()
        self.head = nn.Linear(3, 2).double()

    def forward(self, x):
        features = self.conv(x)
        return self.head(x.mean((2, 3))) + 0 * features.sum()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: tinycam.explain(m, x[0], LAST), r"\(B, C, H, W\), got shape \(3, 10, 10\).*images\[None\]"),
        (lambda m, x: tinycam.explain(m, (x * 255).long(), LAST), "floating point"),
        (lambda m, x: tinycam.explain(m, x.float(), LAST), "images are torch.float32 but the model's parameters are torch.float64"),
        (lambda m, x: tinycam.explain(m, x.masked_fill(x > 0.5, float("nan")), LAST), "NaN or inf"),
        (lambda m, x: tinycam.explain(m, x, LAST, target=4), "target class 4 is out of range: the model has 4 classes"),
        (lambda m, x: tinycam.explain(m, x, LAST, target=[0, 1]), "one per image"),
        (lambda m, x: tinycam.explain(m, x, LAST, target=0.5), "class indices"),
        (lambda m, x: tinycam.explain(m, x, "features.4"), r"unknown layer 'features.4'; valid layer names are: '0', '0.0'"),
        (lambda m, x: tinycam.explain(m, x, "1.1"), r"outputs \(4, 16\), not a feature map"),
        (lambda m, x: tinycam.explain(m, x, nn.ReLU()), "not part of this model"),
        (lambda m, x: tinycam.explain(m, x, LAST, method="gradcam+"), "unknown method 'gradcam\\+'"),
        (lambda m, x: tinycam.explain(Ignores(), x, "conv"), "zero everywhere"),
        (lambda m, x: tinycam.explain(Ignores(), x, "unused"), "did not run"),
    ],
)
def test_errors_that_teach(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_cnn("fc").eval(), images())


def test_inference_mode_is_explained():
    model, x = small_cnn().eval(), images()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="outside `with torch.inference_mode"):
        tinycam.explain(model, x, LAST)


def test_works_under_no_grad():
    model, x = small_cnn().eval(), images()
    with torch.no_grad():
        maps_ = tinycam.explain(model, x, LAST)
        assert not torch.is_grad_enabled()  # the caller's grad mode is left as it was
    assert maps_.shape == (4, 10, 10) and torch.is_grad_enabled()


def test_an_image_with_zero_gradient_is_named_in_a_warning():
    class OneDead(nn.Module):
        """The score of image 1 ignores the features (its input is all zeros, so the gate closes)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1).double()
            self.head = nn.Linear(2, 2).double()

        def forward(self, x):
            features = self.conv(x)
            gate = (x.flatten(1).sum(1) > 0).to(x.dtype)[:, None]
            return self.head(features.mean((2, 3))) * gate

    x = images(batch=3)
    x[1] = 0
    with pytest.warns(UserWarning, match=r"zero everywhere for image\(s\) \[1\]"):
        tinycam.capture(OneDead(), x, "conv")
