"""The CAM methods that came after the lecture (HiResCAM, LayerCAM, XGrad-CAM, Score-CAM) against their definitions,
on a hand-weighted conv -> ReLU -> flatten -> linear network whose maps are worked out on paper below; HiResCAM's
guarantee for flatten + FC heads; the model left as found; bad input refused, the same way by both twins."""

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

import tinycam
from tinycam import reference as R
from tinycam import torch_reference as T
from tinycam.cams import CAM_METHODS

from toy_models import LAST, assert_same_state, images, model_state, small_cnn

NEW_METHODS = ["hirescam", "layercam", "xgradcam", "scorecam"]

# ---------------------------------------------------------------------------------------------------------------
# the network worked out on paper
#
# input X: 2 channels of 2 x 2                x0 = [[1, 2], [3, 4]]      x1 = [[2, 1], [0, 1]]
# "0": a 1x1 conv, no bias, 2 -> 3 channels   A^0 = x0, A^1 = x1, A^2 = −x0
# "1": ReLU (the layer explained)             A^0 = [[1, 2], [3, 4]], A^1 = [[2, 1], [0, 1]], A^2 = 0 (a dead channel)
# "2", "3": flatten, linear 12 -> 2           y^c = Σ_kij W^c_kij A^k_ij + b^c, so ∂y^c/∂A^k_ij = W^c_kij
#
# class 0: W^0 = [[1, −1], [0, −1]], W^1 = [[3, 4], [1, 0]], W^2 = [[5, 5], [5, 5]], b = 0.5
#          y^0 = (1 − 2 + 0 − 4) + (6 + 4 + 0 + 0) + 0 + 0.5 = 5.5
X = [[[1.0, 2.0], [3.0, 4.0]], [[2.0, 1.0], [0.0, 1.0]]]
CLASS_0 = [[[1.0, -1.0], [0.0, -1.0]], [[3.0, 4.0], [1.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]]]
CLASS_1 = [[[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]
BIAS = [0.5, -1.0]
SCORE_0 = 5.5

# HiResCAM, Σ_k W^k ⊙ A^k:  [[1, −2], [0, −4]] + [[6, 4], [0, 0]] + 0   = [[7, 2], [0, −4]]   (sums to 5 = y^0 − b^0)
# LayerCAM, Σ_k ReLU(W^k) ⊙ A^k:  [[1, 0], [0, 0]] + [[6, 4], [0, 0]]  = [[7, 4], [0, 0]]
# Grad-CAM, α = mean W^k = (−0.25, 2, 5): −0.25 A^0 + 2 A^1            = [[3.75, 1.5], [−0.75, 1]]   (sums to 5.5)
# XGrad-CAM, w_k = Σ A^k ⊙ W^k / Σ A^k = (−5/10, 10/4, 0 for the dead channel):
#           −0.5 A^0 + 2.5 A^1                                          = [[4.5, 1.5], [−1.5, 0.5]]   (sums to 5)
BY_HAND = {
    "hirescam": [[7.0, 2.0], [0.0, 0.0]],
    "layercam": [[7.0, 4.0], [0.0, 0.0]],
    "gradcam": [[3.75, 1.5], [0.0, 1.0]],
    "xgradcam": [[4.5, 1.5], [0.0, 0.5]],
}
# Score-CAM. The masks are the maps min-max normalized (2 x 2 -> 2 x 2 upsampling is the identity):
#   H^0 = (A^0 − 1) / 3 = [[0, 1/3], [2/3, 1]],  H^1 = A^1 / 2 = [[1, 1/2], [0, 1/2]],  H^2 = 0 (a constant map).
# X ∘ H^0: x0 = [[0, 2/3], [2, 4]], x1 = [[0, 1/3], [0, 1]]: y^0 = (0 − 2/3 + 0 − 4) + (0 + 4/3 + 0 + 0) + 0.5 = −17/6
# X ∘ H^1: x0 = [[1, 1], [0, 2]], x1 = [[2, 1/2], [0, 1/2]]: y^0 = (1 − 1 + 0 − 2) + (6 + 2 + 0 + 0) + 0.5 = 13/2
# X ∘ H^2 = 0, the baseline itself: y^0 = b^0 = 1/2. Increases over the baseline: (−10/3, 6, 0).
SCORECAM_MASKED = [-17 / 6, 13 / 2, 1 / 2]
SCORECAM_INCREASES = [-10 / 3, 6.0, 0.0]


def hand_model():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    linear = nn.Linear(12, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])[:, :, None, None])
        linear.weight.copy_(torch.tensor([CLASS_0, CLASS_1]).reshape(2, 12))
        linear.bias.copy_(torch.tensor(BIAS))
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), linear).double().eval()


def hand_images():
    return torch.tensor([X], dtype=torch.float64)


def test_the_hand_model_is_the_one_on_paper():
    model, x = hand_model(), hand_images()
    got = tinycam.capture(model, x, "1", target=0)
    torch.testing.assert_close(got.acts[0], torch.tensor([X[0], X[1], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64))
    torch.testing.assert_close(got.grads[0], torch.tensor(CLASS_0, dtype=torch.float64))
    assert float(got.scores[0, 0]) == SCORE_0


@pytest.mark.parametrize("method", sorted(BY_HAND))
def test_each_gradient_method_gives_the_map_worked_out_on_paper(method):
    got = tinycam.explain(hand_model(), hand_images(), "1", method, target=0, normalize=False)[0]
    torch.testing.assert_close(got, torch.tensor(BY_HAND[method], dtype=torch.float64), rtol=0, atol=1e-12)


def test_hirescam_and_gradcam_differ_where_the_gradient_varies_over_the_map():
    # at (1, 1) the class-0 evidence is A^0 W^0 = 4 · (−1): HiResCAM shows nothing there, Grad-CAM's averaged weights
    # (α_1 = 2 times A^1 = 1, minus 0.25 · 4) highlight it
    hires = tinycam.explain(hand_model(), hand_images(), "1", "hirescam", target=0, normalize=False)[0]
    grad = tinycam.explain(hand_model(), hand_images(), "1", "gradcam", target=0, normalize=False)[0]
    assert float(hires[1, 1]) == 0.0 and float(grad[1, 1]) == 1.0


def test_the_weight_functions_give_the_weights_worked_out_on_paper_in_both_twins():
    acts = np.array([X[0], X[1], np.zeros((2, 2))])
    grads = np.array(CLASS_0)
    expected = {
        "hirescam_weights": (grads,),
        "layercam_weights": (np.maximum(grads, 0),),
        "xgradcam_weights": (np.array([-0.5, 2.5, 0.0]),),
    }
    for name, (weights,) in expected.items():
        args = (grads,) if name != "xgradcam_weights" else (acts, grads)
        np.testing.assert_allclose(getattr(R, name)(*args), weights, rtol=0, atol=1e-15)
        np.testing.assert_allclose(getattr(T, name)(*(torch.tensor(a) for a in args)).numpy(), weights, rtol=0, atol=1e-15)


def test_xgradcam_gives_a_channel_whose_activations_sum_to_zero_weight_zero_in_both_twins():
    acts = np.zeros((2, 3, 3))
    acts[1] = np.arange(9.0).reshape(3, 3)
    grads = np.full((2, 3, 3), 7.0)  # a large gradient on the dead channel does not matter
    for weights in (R.xgradcam_weights(acts, grads), T.xgradcam_weights(torch.tensor(acts), torch.tensor(grads)).numpy()):
        assert weights[0] == 0.0 and weights[1] == pytest.approx(7.0, rel=1e-15)  # Σ (A/ΣA) · 7 = 7
    # activations of both signs summing to exactly 0 also give 0, not a division by zero
    signed = np.array([[[1.0, -1.0], [2.0, -2.0]]])
    assert R.xgradcam_weights(signed, np.ones((1, 2, 2)))[0] == 0.0
    assert float(T.xgradcam_weights(torch.tensor(signed), torch.ones(1, 2, 2, dtype=torch.float64))[0]) == 0.0


def test_scorecam_masks_and_weights_on_paper_in_both_twins():
    acts = np.array([X[0], X[1], np.zeros((2, 2))])
    masks = np.array([[[0, 1 / 3], [2 / 3, 1]], [[1, 0.5], [0, 0.5]], [[0, 0], [0, 0]]])
    np.testing.assert_allclose(R.scorecam_masks(acts, (2, 2)), masks, rtol=0, atol=1e-15)
    np.testing.assert_allclose(T.scorecam_masks(torch.tensor(acts), (2, 2)).numpy(), masks, rtol=0, atol=1e-15)
    exponentials = [math.exp(s) for s in SCORECAM_INCREASES]
    alphas = np.array(exponentials) / sum(exponentials)
    for weights in (R.scorecam_weights(SCORECAM_MASKED, 0.5),
                    T.scorecam_weights(torch.tensor(SCORECAM_MASKED, dtype=torch.float64), torch.tensor(0.5)).numpy()):
        np.testing.assert_allclose(weights, alphas, rtol=1e-14)


def test_scorecam_on_the_hand_model_runs_the_masked_inputs_worked_out_on_paper():
    model, x = hand_model(), hand_images()
    # the masked scores themselves, by a plain forward pass on the masked images of the comment above
    masked = torch.stack([x[0] * torch.tensor(m) for m in R.scorecam_masks(np.array([X[0], X[1], np.zeros((2, 2))]), (2, 2))])
    with torch.no_grad():
        torch.testing.assert_close(model(masked)[:, 0], torch.tensor(SCORECAM_MASKED, dtype=torch.float64))
        assert float(model(torch.zeros_like(x))[0, 0]) == 0.5  # the black baseline scores the bias
    exponentials = [math.exp(s) for s in SCORECAM_INCREASES]
    alphas = [e / sum(exponentials) for e in exponentials]
    expected = np.maximum(alphas[0] * np.array(X[0]) + alphas[1] * np.array(X[1]), 0.0)
    for batch_size in (1, 2, 3, None):
        got = tinycam.explain(model, x, "1", "scorecam", target=0, normalize=False, batch_size=batch_size, progress=False)
        np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-13)


def test_the_baseline_cancels_in_scorecams_softmax():
    rng = np.random.default_rng(0)
    masked = rng.normal(size=(3, 7)) * 4
    for shift in (-100.0, 0.0, 3.5):
        np.testing.assert_allclose(R.scorecam_weights(masked, np.full(3, shift)), R.scorecam_weights(masked, np.zeros(3)),
                                   rtol=1e-12)
    weights = T.scorecam_weights(torch.tensor(masked), torch.tensor(rng.normal(size=3)))
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64))
    assert bool((weights > 0).all())


# ---------------------------------------------------------------------------------------------------------------
# HiResCAM's guarantee: for conv -> flatten -> one linear layer, Σ_ij of the map before the ReLU is y^c − b^c


def flatten_fc_model(seed, side=10, channels=6, n_classes=4):
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 5, 3, padding=1, stride=2),
                             nn.ReLU())
    head = nn.Sequential(nn.Flatten(), nn.Linear(5 * (side // 2) ** 2, n_classes))
    with torch.no_grad():
        head[1].bias.normal_(0, 3)  # a bias far from 0, so forgetting it would show
    return nn.Sequential(features, head).double().eval()


@pytest.mark.parametrize("seed", range(3))
def test_hirescam_map_sums_to_the_score_minus_the_bias_and_gradcams_does_not(seed):
    model, x = flatten_fc_model(seed), images(batch=4, seed=seed)
    bias = model[1][1].bias.detach()
    for c in range(4):
        got = tinycam.capture(model, x, "0.3", target=c)
        hires = T.weighted_combination(T.hirescam_weights(got.grads), got.acts)  # before the ReLU
        grad = T.weighted_combination(T.gradcam_weights(got.grads), got.acts)
        expected = got.scores[:, c] - bias[c]
        torch.testing.assert_close(hires.sum(dim=(-2, -1)), expected, rtol=1e-10, atol=1e-10)
        assert float((grad.sum(dim=(-2, -1)) - expected).abs().max()) > 1e-3
        # XGrad-CAM's weights satisfy the same conservation (Fu et al.'s axiom) for this head: Σ_k w_k Σ_ij A^k
        xgrad = T.weighted_combination(T.xgradcam_weights(got.acts, got.grads), got.acts)
        torch.testing.assert_close(xgrad.sum(dim=(-2, -1)), expected, rtol=1e-10, atol=1e-10)


def test_the_hand_model_satisfies_the_guarantee_on_paper():
    got = tinycam.capture(hand_model(), hand_images(), "1", target=0)
    hires = T.weighted_combination(T.hirescam_weights(got.grads), got.acts)[0]
    torch.testing.assert_close(hires, torch.tensor([[7.0, 2.0], [0.0, -4.0]], dtype=torch.float64))
    assert float(hires.sum()) == SCORE_0 - BIAS[0] == 5.0
    assert float(T.weighted_combination(T.gradcam_weights(got.grads), got.acts).sum()) == 5.5


# ---------------------------------------------------------------------------------------------------------------
# Score-CAM through explain equals the definition written as a plain loop (with upsampling: 5 x 5 maps, 10 x 10 images)


@pytest.mark.parametrize("head", ["gap", "fc"])
def test_scorecam_equals_a_plain_loop_over_the_feature_maps(head):
    model, x = small_cnn(head), images(batch=3)
    targets = [0, 3, 1]
    acts = tinycam.capture(model, x, LAST, target=targets, gradients=False).acts.numpy()
    alphas = np.zeros(acts.shape[:2])
    with torch.no_grad():
        for i, c in enumerate(targets):
            baseline = float(model(torch.zeros_like(x[i : i + 1]))[0, c])
            masked = [float(model(x[i : i + 1] * torch.from_numpy(mask))[0, c]) for mask in R.scorecam_masks(acts[i], (10, 10))]
            alphas[i] = R.scorecam_weights(masked, baseline)
    expected = R.normalize(R.upsample(R.localization_map(alphas, acts), (10, 10)))
    for batch_size in (4, None):
        got = tinycam.explain(model, x, LAST, "scorecam", target=targets, batch_size=batch_size, progress=False)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["hirescam", "layercam", "xgradcam"])
def test_explain_equals_the_reference_pipeline(method):
    model, x = small_cnn("fc"), images()
    got = tinycam.capture(model, x, LAST, target=2)
    raw = getattr(R, method)(got.acts.numpy(), got.grads.numpy())
    np.testing.assert_allclose(tinycam.explain(model, x, LAST, method, target=2).numpy(), R.normalize(R.upsample(raw, (10, 10))),
                               rtol=0, atol=1e-10)


def test_scorecam_shows_a_progress_bar_only_when_asked_or_long(capsys):
    model, x = small_cnn("gap"), images(batch=1)
    tinycam.explain(model, x, LAST, "scorecam", batch_size=5, progress=False)
    assert capsys.readouterr().err == ""
    tinycam.explain(model, x, LAST, "scorecam", batch_size=1)  # 5 maps: 5 batches, more than 4
    assert "score-cam" in capsys.readouterr().err


def test_scorecam_without_tqdm_has_no_bar_unless_asked(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `import tqdm.auto` now raises ImportError
    model, x = small_cnn("gap"), images(batch=1)
    tinycam.explain(model, x, LAST, "scorecam", batch_size=1)
    assert capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        tinycam.explain(model, x, LAST, "scorecam", progress=True)


# ---------------------------------------------------------------------------------------------------------------
# the model as found, bad input


def awkward_model():
    """Train mode (with BatchNorm), a frozen parameter and a user's hook: everything a call must leave alone."""
    model = small_cnn("gap", batchnorm=True).train()
    model[0][0].weight.requires_grad_(False)
    model[0][3].register_forward_hook(lambda m, i, o: None)
    return model


@pytest.mark.parametrize("method", NEW_METHODS)
def test_the_model_is_left_exactly_as_found(method):
    model = awkward_model()
    before = model_state(model)
    tinycam.explain(model, images(), LAST, method, target=1)
    assert_same_state(before, model_state(model))


def test_the_model_is_left_as_found_when_a_masked_forward_pass_raises():
    model = awkward_model()
    calls = []

    def fail_on_the_third_pass(module, inputs, output):
        calls.append(1)
        if len(calls) == 3:  # the capture, the baseline, then the first batch of masked images
            raise RuntimeError("boom")

    handle = model.register_forward_hook(fail_on_the_third_pass)
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        tinycam.explain(model, images(), LAST, "scorecam", batch_size=2, progress=False)
    assert_same_state(before, model_state(model))
    assert torch.is_grad_enabled()
    handle.remove()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: tinycam.explain(small_cnn("fc"), images(), LAST, "scorecam", batch_size=0), ValueError,
         "batch_size must be a positive integer"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), LAST, "scorecam", batch_size=2.0), ValueError,
         "batch_size must be a positive integer"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), LAST, "scorecam", patch=3), ValueError,
         r"method 'scorecam' takes only \['batch_size', 'progress'\], got \['patch'\]"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), LAST, "hirescam", batch_size=3), ValueError,
         "method 'hirescam' takes no options"),
        (lambda: tinycam.explain(small_cnn("fc"), images(), None, "scorecam"), ValueError, "needs a layer"),
        (lambda: R.xgradcam_weights(np.ones((2, 3, 3)), np.ones((2, 3, 2))), ValueError, "same shape"),
        (lambda: T.hirescam(torch.ones(2, 3, 3), torch.ones(2, 3, 4)), ValueError, "same shape"),
        (lambda: R.layercam_weights(np.ones((3, 3))), ValueError, r"\(\.\.\., K, H, W\)"),
        (lambda: R.scorecam_masks(np.ones((2, 3, 3)), (4,)), ValueError, "size must be"),
        (lambda: T.scorecam_masks(torch.ones(2, 3, 3), (0, 4)), ValueError, "size must be"),
        (lambda: R.scorecam_weights(np.ones((2, 5)), np.ones(3)), ValueError, r"baseline_score the shape \(\.\.\.\) before K"),
        (lambda: T.scorecam_weights(torch.ones(2, 5), torch.ones(2, 5)), ValueError, "baseline_score the shape"),
        (lambda: T.scorecam_weights(torch.ones(2, 0), torch.ones(2)), ValueError, r"\(K ≥ 1\)"),
        (lambda: T.scorecam_weights(torch.ones(2, 3, dtype=torch.int64), torch.ones(2)), ValueError, "floating-point"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


NON_FINITE_CALLS = {
    "hirescam_weights": lambda a, g: (g,),
    "hirescam": lambda a, g: (a, g),
    "layercam_weights": lambda a, g: (g,),
    "layercam": lambda a, g: (a, g),
    "xgradcam_weights": lambda a, g: (a, g),
    "xgradcam": lambda a, g: (a, g),
    "scorecam_masks": lambda a, g: (a, (4, 4)),
    "scorecam_weights": lambda a, g: (a[..., 0, 0], g[..., 0, 0, 0]),
}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(NON_FINITE_CALLS))
def test_both_twins_refuse_non_finite_input_with_the_same_message(name, bad):
    acts, grads = np.ones((2, 3, 2, 2)), np.ones((2, 3, 2, 2))
    poisoned = grads if name in ("hirescam_weights", "layercam_weights") else acts
    poisoned[0, 0, 0, 0] = bad
    messages = []
    for module, convert in [(R, np.asarray), (T, torch.tensor)]:
        args = [convert(a) if isinstance(a, np.ndarray) else a for a in NON_FINITE_CALLS[name](acts, grads)]
        with pytest.raises(ValueError, match="NaN or inf") as raised:
            getattr(module, name)(*args)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


def test_every_new_method_is_a_row_reachable_through_explain():
    assert set(NEW_METHODS) <= set(CAM_METHODS) <= set(tinycam.METHODS)
    assert CAM_METHODS["scorecam"].needs_gradients is False
    assert all(CAM_METHODS[m].needs_gradients for m in ("hirescam", "layercam", "xgradcam"))
