"""Tests of the two tiny CNNs and their committed weights (`tinycam.models`, `data/*_model.pt`, `data/models.json`)."""

import json

import pytest
import torch
from torch import nn

from tinycam import DATA_DIR
from tinycam.models import MODELS, FcNet, GapNet, fold_batchnorm, load_model, weights_path
from tinycam.shapes import make_images
from tinycam.train import evaluate

RECORD = json.loads((DATA_DIR / "models.json").read_text())
# the shipped weights are fixed, so only a decision that flips on a logit within rounding of 0 can change their
# scores between CPUs: allow one (1 of 1000 images; a label is 1 of 3000) on top of the 4-decimal rounding
TOLERANCE = 0.0015


@pytest.fixture(scope="module")
def held_out():
    """The held-out split the recorded accuracies were measured on (both models share it)."""
    seeds = {(RECORD[name]["test_seed"], RECORD[name]["n_test"]) for name in MODELS}
    assert len(seeds) == 1
    (seed, n), = seeds
    return make_images(n, seed)


@pytest.fixture(scope="module", params=sorted(MODELS))
def named_model(request):
    return request.param, load_model(request.param)


def test_recorded_accuracies_are_high():
    for name in MODELS:
        assert RECORD[name]["label_accuracy"] >= 0.95
        assert RECORD[name]["exact_match"] >= 0.85


def test_committed_weights_reach_recorded_accuracy(named_model, held_out):
    name, model = named_model
    with torch.inference_mode():
        scores = evaluate(model, held_out.images, held_out.labels)
    assert abs(scores["label_accuracy"] - RECORD[name]["label_accuracy"]) <= TOLERANCE
    assert abs(scores["exact_match"] - RECORD[name]["exact_match"]) <= TOLERANCE


def test_loaded_model_is_float32_eval_and_outputs_one_logit_per_class(named_model):
    name, model = named_model
    assert isinstance(model, MODELS[name])
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        out = model(torch.rand(5, 3, 64, 64))
    assert out.shape == (5, 3) and out.dtype == torch.float32


def test_unknown_name_raises_with_valid_names():
    with pytest.raises(ValueError, match="fc.*gap"):
        load_model("resnet")


def test_weight_files_are_small():
    for name in MODELS:
        assert weights_path(name).stat().st_size < 400_000


def test_last_conv_is_a_relu_with_the_documented_shape(named_model):
    name, model = named_model
    layer = model.get_submodule(model.last_conv)
    assert isinstance(layer, nn.ReLU)
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64))
    handle.remove()
    expected = (2, 64, 16, 16) if name == "gap" else (2, 16, 8, 8)
    assert seen == [expected]
    # it is the last layer of `features`, and every activation is an nn.ReLU module that the forward pass uses
    assert model.last_conv == f"features.{len(model.features) - 1}"
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == (4 if name == "gap" else 5)
    calls = []
    handles = [relu.register_forward_hook(lambda module, inputs, output: calls.append(module)) for relu in relus]
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64))
    for handle in handles:
        handle.remove()
    assert sorted(map(id, calls)) == sorted(map(id, relus))  # each ReLU module runs exactly once


def test_models_normalize_their_input():
    model = load_model("gap")
    x = torch.rand(2, 3, 64, 64)
    normalize = model.features[0]
    mean, std = torch.tensor([0.29, 0.44, 0.23]).view(1, 3, 1, 1), torch.tensor([0.18, 0.13, 0.19]).view(1, 3, 1, 1)
    expected = (x - mean) / std
    torch.testing.assert_close(normalize(x), expected)


def test_gap_score_is_gap_then_linear_of_the_features(held_out):
    model = load_model("gap")
    x = torch.as_tensor(held_out.images[:8])
    with torch.no_grad():
        scores = model(x)
        maps = model.features(x)  # (8, 64, 16, 16)
        weight, bias = model.classifier.weight, model.classifier.bias  # (3, 64), (3,)
        by_hand = maps.mean(dim=(2, 3)) @ weight.T + bias
        # the same, the CAM way: weight the maps per class, then average the class activation map over positions
        cam = torch.einsum("ck,bkij->bcij", weight, maps)
        via_cam = cam.mean(dim=(2, 3)) + bias
    torch.testing.assert_close(scores, by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scores, via_cam, rtol=1e-5, atol=1e-5)
    assert scores.abs().max() > 1  # real, confident scores, not a degenerate model


def test_fc_score_is_the_head_of_the_flattened_features():
    model = load_model("fc")
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.classifier(model.features(x).flatten(1)))


@pytest.mark.parametrize("cls", [GapNet, FcNet])
def test_folding_batchnorm_is_exact_in_eval_mode(cls):
    torch.manual_seed(0)
    trained = cls(batchnorm=True)
    for module in trained.modules():
        if isinstance(module, nn.BatchNorm2d):  # pretend training moved the statistics and affine parameters
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.2, 3)
            nn.init.uniform_(module.weight, 0.5, 2)
            nn.init.uniform_(module.bias, -1, 1)
    trained.eval()
    plain = fold_batchnorm(trained)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert [type(m) for m in plain.features] == [type(m) for m in cls().features]
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), trained(x), rtol=1e-4, atol=1e-5)


def test_shuffled_label_model_loads_and_scores_its_recorded_chance_level_accuracy(held_out):
    entry = RECORD["gap_shuffled"]
    assert entry["shuffled_labels"] is True and (entry["test_seed"], entry["n_test"]) == (10000, len(held_out))
    model = load_model("gap_shuffled")
    assert isinstance(model, GapNet) and not model.training
    assert not torch.equal(model.classifier.weight, load_model("gap").classifier.weight)
    with torch.inference_mode():
        scores = evaluate(model, held_out.images, held_out.labels)
    assert abs(scores["label_accuracy"] - entry["label_accuracy"]) <= TOLERANCE
    assert abs(scores["exact_match"] - entry["exact_match"]) <= TOLERANCE
    assert scores["label_accuracy"] < 0.7  # trained on labels unrelated to the images: near the majority guess
    assert weights_path("gap_shuffled").stat().st_size < 400_000
