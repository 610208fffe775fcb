"""The capture path on small random CNNs: gradients equal full-graph autograd, targets, the model left exactly as it
was (also after errors), errors that teach."""

import numpy as np
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


# --- under stress: threads, unusual models, unusual inputs ------------------------------------------------------


def test_two_threads_explaining_with_one_model_take_turns():
    import threading

    model = awkward_model()  # BatchNorm in train mode, a frozen layer, a user's hook
    x = images()
    alone = {m: tinycam.explain(model, x, LAST, m, target=1) for m in ("saliency", "guided-backprop", "gradcam")}
    before = model_state(model)
    errors, results = [], {m: [] for m in alone}

    def work(method):
        try:
            for _ in range(15):
                results[method].append(tinycam.explain(model, x, LAST, method, target=1))
        except Exception as error:  # pragma: no cover - the failure this test is about
            errors.append(error)

    threads = [threading.Thread(target=work, args=(m,)) for m in alone]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for method, maps in results.items():
        assert all(torch.equal(m, alone[method]) for m in maps), method  # saliency never came back guided
    assert_same_state(before, model_state(model))


def test_the_model_gains_nothing_and_is_freed():
    import gc
    import weakref

    model = small_cnn()
    attributes = set(vars(model))
    tinycam.explain(model, images(), LAST)
    assert set(vars(model)) == attributes
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


class ReturnsDict(nn.Module):
    def __init__(self, wrap):
        super().__init__()
        self.net, self.wrap = small_cnn("gap"), wrap

    def forward(self, x):
        scores = self.net(x)
        return {"dict": {"logits": scores}, "tuple": (scores, scores), "flat": scores[:, 0],
                "3d": scores[:, None]}[self.wrap]


@pytest.mark.parametrize("wrap", ["dict", "tuple", "flat", "3d"])
@pytest.mark.parametrize("method", ["gradcam", "saliency", "guided-backprop", "occlusion"])
def test_a_model_that_does_not_return_scores_gets_told_how_to_wrap_it(wrap, method):
    layer = "net.0.4"
    with pytest.raises(ValueError, match=r"class scores of shape \(B, n_classes\).*wrap it"):
        tinycam.explain(ReturnsDict(wrap), images(), layer, method)


@pytest.mark.parametrize(
    "target, message",
    [("2", "class indices"), (2**70, "out of range"), ([], "one per image"), ([0, None], "class indices"),
     (True, "class indices"), (0.5, "class indices"), (torch.tensor([0.0, 1.0]), "dtype torch.float32"),
     (np.array([True] * 4), "dtype torch.bool")],
)
def test_targets_that_are_not_class_indices(target, message):
    with pytest.raises(ValueError, match=message):
        tinycam.capture(small_cnn(), images(), LAST, target=target)


def test_numpy_integer_targets_are_class_indices():
    got = tinycam.capture(small_cnn(), images(), LAST, target=np.int64(2)).targets
    assert got.tolist() == [2] * 4
    assert tinycam.capture(small_cnn(), images(), LAST, target=np.arange(4)).targets.tolist() == [0, 1, 2, 3]


def test_an_empty_batch_is_named():
    with pytest.raises(ValueError, match=r"empty batch \(B = 0\)"):
        tinycam.explain(small_cnn(), images()[:0], LAST)


def test_a_module_registered_under_two_names_answers_to_both():
    class Aliased(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_cnn()
            self.last = self.net[0][4]  # the same ReLU, registered a second time

        def forward(self, x):
            return self.net(x)

    model = Aliased()
    by_alias, by_path = tinycam.capture(model, images(), "last"), tinycam.capture(model, images(), "net.0.4")
    torch.testing.assert_close(by_alias.grads, by_path.grads)


def test_eval_mode_reaches_every_module_once_also_shared_and_cyclic_ones():
    from tinycam.capturing import _submodules, eval_mode

    model = small_cnn("gap", batchnorm=True)
    model.add_module("shared", model[0][1])  # the BatchNorm, registered a second time
    model[1].add_module("loop", model)  # a cycle: the model inside its own head (never called)
    walked = [id(m) for m in _submodules(model)]
    assert len(walked) == len(set(walked)) and set(walked) == {id(m) for m in model.modules()}  # each once
    for module in model.modules():  # (model.train() itself recurses forever on the cycle)
        module.training = module is not model[0][2]  # train mode, but one module already in eval mode
    flags = [m.training for m in model.modules()]
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == flags


def test_a_model_that_computes_its_head_without_gradients_is_told_so():
    class NoGradHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.head = small_cnn()[0], small_cnn()[1]

        def forward(self, x):
            with torch.no_grad():  # a frozen backbone: the head then gets features without a graph
                features = self.features(x)
            return self.head(features)

    with pytest.raises(ValueError, match="without gradients"):
        tinycam.capture(NoGradHead(), images(), "features.4")


def test_a_train_override_is_not_run_and_requires_grad_stays():
    class FreezesInEval(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_cnn()

        def forward(self, x):
            return self.net(x)

        def train(self, mode=True):
            super().train(mode)
            for p in self.parameters():
                p.requires_grad_(mode)
            return self

    model = FreezesInEval().train()
    before = model_state(model)
    tinycam.explain(model, images(), "net.0.4")
    assert_same_state(before, model_state(model))


def test_batchnorm_without_running_statistics_is_warned_about():
    model = small_cnn(batchnorm=True)
    model[0][1] = nn.BatchNorm2d(6, track_running_stats=False).double()
    with pytest.warns(UserWarning, match="track_running_stats=False.*one image at a time"):
        tinycam.explain(model, images(), LAST)


def test_a_misspelt_layer_is_an_error_for_every_method():
    with pytest.raises(ValueError, match="unknown layer 'no.such.layer'"):
        tinycam.explain(small_cnn(), images(), "no.such.layer", "saliency")
