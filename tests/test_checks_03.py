"""The checks of notebook 03 (Grad-CAM in torch on batches): right answers pass, planted mistakes get their hint."""

import numpy as np
import pytest
import torch

from tinycam.course import checks

from check_harness import check_tests


def _weights(grads):
    return grads.sum(dim=(2, 3)) / (grads.shape[2] * grads.shape[3])


# exercise -> a correct answer, in torch, written differently from the reference where possible
CORRECT = {
    "gradcam_weights_torch": _weights,
    "gradcam_torch": lambda a, g: torch.einsum("bk,bkij->bij", _weights(g), a).clamp(min=0),
    "counterfactual_torch": lambda a, g: torch.relu(-torch.einsum("bk,bkij->bij", _weights(g), a)),
}


def _hard_coded(value):
    return lambda *args: torch.tensor(value, dtype=torch.float64)


def _relu_of_sum(weights, acts):
    return torch.relu((weights[:, :, None, None] * acts).sum(dim=1))


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "gradcam_weights_torch": [
        (lambda g: g.sum(dim=(-2, -1)), "summed"),
        (lambda g: g.mean(dim=(0, 2, 3)), "keep the batch axis"),
        (lambda g: g.mean(dim=1), "not over the feature maps"),
        (lambda g: -g.mean(dim=(-2, -1)), "sign"),
        (lambda g: g.clamp(min=0).mean(dim=(-2, -1)), "no ReLU"),
        (lambda g: g.mean(dim=(-2, -1)).clamp(min=0), "no ReLU on the weights"),
        (lambda g: g.float().mean(dim=(-2, -1)), "compute in float64"),  # float32: off in the 8th digit
        (lambda g: g.mean(dim=(1, 3)), "α_k^c ="),  # wrong axes, a shape no mistake predicts
        (_hard_coded([[2.75, 4.25, 0.1]]), "α_k^c ="),  # the visible example's answer
    ],
    "gradcam_torch": [
        (lambda a, g: (g.mean(dim=(-2, -1))[:, :, None, None] * a).sum(dim=1), "forgot the ReLU"),
        (lambda a, g: _relu_of_sum(g.sum(dim=(-2, -1)), a), "Z = h·w times too large"),
        (lambda a, g: torch.relu(g.mean(dim=(-2, -1))[:, :, None, None] * a).sum(dim=1), "apply the ReLU once"),
        (lambda a, g: torch.relu((g * a).sum(dim=1)), "each whole map by one number"),
        (lambda a, g: _relu_of_sum(g.mean(dim=(0, 2, 3)).expand(g.shape[:2]), a), "keep the batch axis"),
        (lambda a, g: _relu_of_sum(g.mean(dim=(-2, -1)), g), "not the gradient maps"),
        (lambda a, g: torch.relu((g.mean(dim=(-2, -1))[:, :, None, None] * a).mean(dim=1)), "weights = the mean of each gradient map"),
        (lambda a, g: torch.relu(-(g.mean(dim=(-2, -1))[:, :, None, None] * a).sum(dim=1)), "counterfactual map"),
        (lambda a, g: _relu_of_sum(g.mean(dim=(-2, -1)).clamp(min=0), a), "keep their sign"),
        (lambda a, g: _relu_of_sum(g.mean(dim=(-2, -1)), a).transpose(-1, -2), "transposed"),
        (_hard_coded([[[8.925, 0.0], [16.125, 2.6]]]), "weights = the mean of each gradient map"),
    ],
    "counterfactual_torch": [
        (lambda a, g: _relu_of_sum(g.mean(dim=(-2, -1)), a), "negate the gradients"),
        (lambda a, g: -_relu_of_sum(g.mean(dim=(-2, -1)), a), "negate before the ReLU"),
        (lambda a, g: _relu_of_sum(-g.sum(dim=(-2, -1)), a), "Z = h·w times too large"),
        (lambda a, g: _relu_of_sum((-g).clamp(min=0).mean(dim=(-2, -1)), a), "no ReLU on the gradients"),
        (lambda a, g: (-g.mean(dim=(-2, -1))[:, :, None, None] * a).sum(dim=1), "weights = the mean of each negated"),
        (lambda a, g: _relu_of_sum((-g).mean(dim=(-2, -1)).clamp(min=0), a), "no ReLU on the weights"),
        (lambda a, g: _relu_of_sum(-g.mean(dim=(-2, -1)), a).mT, "transposed"),
        (_hard_coded([[[0.0, 2.025], [0.0, 0.0]]]), "weights = the mean of each negated"),
    ],
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_cases_are_float64_tensors_drawn_from_the_seed(name):
    cases = checks.EXERCISES[name].cases
    first, again, other = cases(7), cases(7), cases(8)
    assert first[0][0].startswith("the lecture example")
    for (_, args), (_, args_again), (_, args_other) in zip(first[1:], again[1:], other[1:], strict=True):
        assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float64 and x.ndim == 4 for x in args)
        assert all(torch.equal(x, y) for x, y in zip(args, args_again, strict=True))
        assert not all(torch.equal(x, y) for x, y in zip(args, args_other, strict=True))


def test_the_visible_example_is_the_lecture_example():
    (_, (acts, grads)) = checks.EXERCISES["gradcam_torch"].cases(0)[0]
    np.testing.assert_allclose(CORRECT["gradcam_weights_torch"](grads).numpy(), [[2.75, 4.25, 0.1]])
    np.testing.assert_allclose(CORRECT["gradcam_torch"](acts, grads).numpy(), [[[8.925, 0.0], [16.125, 2.6]]])
    np.testing.assert_allclose(CORRECT["counterfactual_torch"](acts, grads).numpy(), [[[0.0, 2.025], [0.0, 0.0]]])


globals().update(check_tests("03", CORRECT, WRONG))
