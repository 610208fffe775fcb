"""capture / explain on small random CNNs: correct gradients, batch independence, the model left untouched, errors."""

import numpy as np
import pytest
import torch
from torch import nn

import tinycam
from tinycam import torch_reference
from tinycam import reference as R
from tinycam.explaining import METHODS


def small_cnn(head="gap", inplace=True, batchnorm=False, dtype=torch.float64, seed=0):
    """conv-(BatchNorm)-ReLU-conv-ReLU, then GAP + linear ("gap") or flatten + two linear layers ("fc"); 4 classes."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 6, 3, padding=1)]
    layers += [nn.BatchNorm2d(6) if batchnorm else nn.Identity()]
    layers += [nn.ReLU(inplace=inplace), nn.Conv2d(6, 5, 3, padding=1, stride=2), nn.ReLU(inplace=inplace)]
    features = nn.Sequential(*layers)
    if head == "gap":
        classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))
    else:
        classifier = nn.Sequential(nn.Flatten(), nn.Linear(5 * 5 * 5, 16), nn.ReLU(), nn.Linear(16, 4))
    return nn.Sequential(features, classifier).to(dtype)


def images(batch=4, dtype=torch.float64, seed=1):
    return torch.rand(batch, 3, 10, 10, generator=torch.Generator().manual_seed(seed), dtype=dtype)


LAST = "0.4"  # the last ReLU of `features`: (B, 5, 5, 5)


def full_graph_gradients(model, x, layer_name, targets):
    """The plain way: record the whole graph, keep the layer's output, differentiate the picked scores."""
    kept = []
    handle = dict(model.named_modules())[layer_name].register_forward_hook(lambda m, i, o: kept.append(o))
    try:
        scores = model(x.clone().requires_grad_(True))
    finally:
        handle.remove()
    picked = scores.gather(1, torch.as_tensor(targets)[:, None]).sum()
    return kept[0], torch.autograd.grad(picked, kept[0])[0], scores


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


@pytest.mark.parametrize("method", sorted(METHODS))
def test_explain_is_batch_independent(method):
    model = small_cnn("gap", batchnorm=True).train()  # train mode: BatchNorm would mix images if left so
    x = images(batch=5)
    together = tinycam.explain(model, x, LAST, method=method, target=[0, 1, 2, 3, 0])
    for i, c in enumerate([0, 1, 2, 3, 0]):
        alone = tinycam.explain(model, x[i : i + 1], LAST, method=method, target=c)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-9, atol=1e-9)
    per_channel = method in ("guided-backprop", "guided-gradcam")
    assert together.shape == ((5, 3, 10, 10) if per_channel else (5, 10, 10))
    assert float(together.min()) >= 0 and float(together.max()) <= 1


@pytest.mark.parametrize("method", ["gradcam", "counterfactual", "gradcam++"])
def test_explain_equals_the_reference_pipeline(method):
    model, x = small_cnn("fc").eval(), images()
    got = tinycam.capture(model, x, LAST, target=1)
    acts, grads = got.acts.numpy(), got.grads.numpy()
    raw = {"gradcam": R.gradcam, "counterfactual": R.counterfactual, "gradcam++": R.gradcampp}[method](acts, grads)
    expected = R.normalize(R.upsample(raw, (10, 10)))
    np.testing.assert_allclose(tinycam.explain(model, x, LAST, method, target=1).numpy(), expected, rtol=0, atol=1e-10)


def test_cam_uses_the_classifier_weights_and_equals_the_gradient_derivation():
    model, x = small_cnn("gap").eval(), images()
    linear = model[1][2]
    got = tinycam.capture(model, x, LAST, target=2)
    # the derivation: Σ_ij ∂Y^c/∂A^k_ij = w_k^c, and Grad-CAM's α = w / Z
    torch.testing.assert_close(torch_reference.cam_weights_from_gradients(got.grads), linear.weight[2].detach().expand(4, 5),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch_reference.gradcam_weights(got.grads), linear.weight[2].detach().expand(4, 5) / 25,
                               rtol=1e-10, atol=1e-12)
    expected = R.normalize(R.upsample(R.cam(got.acts.numpy(), np.tile(linear.weight[2].detach().numpy(), (4, 1))), (10, 10)))
    np.testing.assert_allclose(tinycam.explain(model, x, LAST, "cam", target=2).numpy(), expected, atol=1e-10)


def test_cam_on_a_fully_connected_head_is_a_clear_error():
    with pytest.raises(ValueError, match="CAM needs .* global average pooling.*use method='gradcam'"):
        tinycam.explain(small_cnn("fc").eval(), images(), LAST, "cam")


# --- the model is left exactly as it was --------------------------------------------------------------------------


def snapshot(model):
    return (
        [(name, m.training) for name, m in model.named_modules()],
        [(name, p.requires_grad, p.grad) for name, p in model.named_parameters()],
        [(name, dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks)) for name, m in model.named_modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
        [id(m) for m in model.modules()],
    )


def assert_same(before, after):
    assert before[0] == after[0], "training flags changed"
    assert before[1] == after[1], "requires_grad or .grad changed"
    assert before[2] == after[2], "hooks changed"
    assert before[3].keys() == after[3].keys() and all(torch.equal(before[3][k], after[3][k]) for k in before[3])
    assert before[4] == after[4], "modules replaced"


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
    before = snapshot(model)
    tinycam.explain(model, images(), LAST, method)
    assert_same(before, snapshot(model))


@pytest.mark.parametrize(
    "kwargs",
    [dict(target=99), dict(target=[0, 1]), dict(layer="1.2"), dict(method="cam", layer="0.1")],
    ids=["target out of range", "wrong number of targets", "layer not a feature map", "cam on wrong layer"],
)
def test_model_state_is_restored_after_an_error(kwargs):
    model = awkward_model()
    before = snapshot(model)
    kwargs = {"layer": LAST, **kwargs}
    with pytest.raises(ValueError):
        tinycam.explain(model, images(), **kwargs)
    assert_same(before, snapshot(model))


def test_model_state_is_restored_when_the_forward_pass_itself_raises():
    model = awkward_model()

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model[1].append(Boom())
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        tinycam.capture(model, images(), LAST)
    assert_same(before, snapshot(model))
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine; the CPU path is tested above")
@pytest.mark.parametrize("method", METHODS)
def test_cpu_and_gpu_agree(method):
    model, x = small_cnn("gap").eval(), images()
    on_cpu = tinycam.explain(model, x, LAST, method, target=1)
    on_gpu = tinycam.explain(model.cuda(), x.cuda(), LAST, method, target=1)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-9, atol=1e-9)


def test_normalize_false_keeps_the_maps_scale():
    model, x = small_cnn("fc").eval(), images()
    got = tinycam.capture(model, x, LAST, target=1)
    raw = torch_reference.upsample(torch_reference.gradcam(got.acts, got.grads), (10, 10))
    torch.testing.assert_close(tinycam.explain(model, x, LAST, "gradcam", target=1, normalize=False), raw)
    torch.testing.assert_close(tinycam.explain(model, x, LAST, "gradcam", target=1), torch_reference.normalize(raw))


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
