"""Model parameter randomization (tinycam.sanity): which layers change, on copies only, seeded; and the similarity of
the maps before and after."""

import copy

import pytest
import torch

import tinycam
from tinycam import sanity

from toy_models import LAST, assert_same_state, model_state, small_cnn
from toy_models import images as random_images


def parameters_of(model, name):
    return [p.detach().clone() for p in model.get_submodule(name).parameters(recurse=False)]


def same_layer(a, b, name):
    return all(torch.equal(x, y) for x, y in zip(parameters_of(a, name), parameters_of(b, name)))


def test_layers_from_the_output_down():
    assert sanity.randomizable_layers(tinycam.load_model("gap")) == [
        "classifier", "features.9", "features.7", "features.4", "features.1"]
    assert sanity.randomizable_layers(small_cnn(head="fc", batchnorm=True)) == ["1.3", "1.1", "0.3", "0.1", "0.0"]


def test_cascading_randomizes_one_more_layer_each_step_on_copies():
    model = small_cnn(head="fc", batchnorm=True)
    before = model_state(model)
    order = sanity.randomizable_layers(model)
    steps = list(sanity.cascading_randomization(model, seed=3))
    assert [name for name, _ in steps] == order
    for k, (_, randomized) in enumerate(steps):
        assert randomized is not model
        changed = [name for name in order if not same_layer(model, randomized, name)]
        assert changed == order[: k + 1]
    assert_same_state(before, model_state(model))


def test_independent_randomizes_one_layer_with_the_cascades_values():
    model = small_cnn(head="fc")
    before = model_state(model)
    order = sanity.randomizable_layers(model)
    cascade = dict(sanity.cascading_randomization(model, seed=5))
    for name, randomized in sanity.independent_randomization(model, seed=5):
        assert [n for n in order if not same_layer(model, randomized, n)] == [name]
        assert same_layer(randomized, cascade[order[-1]], name)  # the full cascade drew the same values for it
    assert_same_state(before, model_state(model))


def test_seeded_and_scaled_by_each_tensors_own_std():
    model = tinycam.load_model("gap")
    layers = ["features.9", "classifier"]
    a = sanity.randomize_layers(model, layers, seed=0)
    b = sanity.randomize_layers(model, layers, seed=0)
    c = sanity.randomize_layers(model, layers, seed=1)
    assert all(same_layer(a, b, name) for name in layers)
    assert not any(same_layer(a, c, name) for name in layers)
    for trained, redrawn in zip(parameters_of(model, "features.9"), parameters_of(a, "features.9")):
        # 36,864 weights, 64 biases: the std of the redrawn values within sampling error of the trained std
        assert redrawn.std().item() == pytest.approx(trained.std().item(), rel=0.3 if redrawn.numel() < 100 else 0.03)
        assert abs(redrawn.mean().item()) < 4 * trained.std().item() / redrawn.numel() ** 0.5
        assert redrawn.dtype == trained.dtype


def test_the_copy_keeps_buffers_flags_and_requires_grad():
    model = small_cnn(batchnorm=True)
    model.train()
    model[0][1].running_mean.fill_(0.25)
    model[0][3].weight.requires_grad_(False)
    randomized = sanity.randomize_layers(model, ["0.1", "0.3"], seed=0)
    assert torch.equal(randomized[0][1].running_mean, model[0][1].running_mean)  # statistics are not parameters
    assert randomized.training and not randomized[0][3].weight.requires_grad
    assert not same_layer(model, randomized, "0.1")  # BatchNorm's own weight and bias are redrawn


@pytest.mark.parametrize("call, message", [
    (lambda m: sanity.randomize_layers(m, ["0.2"]), "not modules with parameters"),
    (lambda m: sanity.randomize_layers(m, "0.0"), "a list of layer names"),
    (lambda m: sanity.randomize_layers(m, ["0.0"], seed=-1), "non-negative integer"),
    (lambda m: next(sanity.cascading_randomization(m, seed=1.5)), "non-negative integer"),
    (lambda m: sanity.randomizable_layers(torch.nn.ReLU()), "no parameters"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_cnn())


def test_similarity_is_one_for_an_unchanged_model_and_lower_for_a_randomized_one():
    model = small_cnn(head="fc")
    before = model_state(model)
    x = random_images(4)
    same = sanity.randomization_similarity(model, x, ["gradcam", "saliency", "cam"], LAST, target=1,
                                           randomized=[("copy", copy.deepcopy(model))])
    assert same.methods == ("gradcam", "saliency") and "cam" in same.skipped  # no GAP head: CAM cannot run
    assert same.steps == ("copy",) and same.spearman.shape == (2, 1, 4)
    nonblank = same.spearman_abs != 0  # a blank Grad-CAM map has no ranking (ρ = 0)
    assert nonblank[1].all()
    torch.testing.assert_close(same.spearman_abs[nonblank], torch.ones(int(nonblank.sum()), dtype=torch.float64))
    torch.testing.assert_close(same.ssim, torch.ones(2, 1, 4, dtype=torch.float64))
    cascade = sanity.randomization_similarity(model, x, ["saliency"], target=1, seed=0)
    assert cascade.steps == tuple(sanity.randomizable_layers(model)) and cascade.spearman.shape == (1, 4, 4)
    assert (cascade.spearman_abs[0, -1] < 0.9).all()  # every layer redrawn: the saliency map changed
    assert_same_state(before, model_state(model))


def test_comparable_maps():
    maps = torch.tensor([[[-2.0, 1.0], [0.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    assert sanity.comparable_maps(maps).tolist() == [[[1.0, 0.5], [0.0, 0.25]], [[0.0, 0.0], [0.0, 0.0]]]
    colour = torch.stack([maps, -2 * maps], dim=1)  # (B, C, H, W): the largest |value| over the channels
    assert sanity.comparable_maps(colour).tolist() == sanity.comparable_maps(maps).tolist()
