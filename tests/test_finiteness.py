"""One finiteness check per map instead of one per equation (`tinycam.finiteness`), and the same errors as before:
a step that is not finite is still found, and named, when the checks are made at the end."""

import numpy as np
import pytest
import torch
from torch import nn

import tinycam
from tinycam import finiteness
from tinycam import reference as R
from tinycam import torch_reference as T
from tinycam.cams import CAM_METHODS

from toy_models import LAST, images, small_cnn


class Scaled(nn.Module):
    """Multiplies its input by a constant: placed after the chosen layer's module, it scales A (and NaN stays NaN)."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_a_step_that_overflows_is_seen_at_the_end_and_named():
    acts = torch.full((1, 2, 2, 2), 1e200, dtype=torch.float64)
    with finiteness.checked_at_the_end() as every_step_finite:
        T.localization_map(torch.tensor([[1e200, 1e200]], dtype=torch.float64), acts)  # Σ w A = inf: no error here
        assert not every_step_finite()
    with pytest.raises(ValueError, match="overflows"):  # outside the block the same call names the step
        T.localization_map(torch.tensor([[1e200, 1e200]], dtype=torch.float64), acts)


def test_a_non_finite_value_that_a_relu_would_hide_is_still_seen():
    # Σ w A = −inf, and ReLU(−inf) = 0: the end result is finite, the step was not
    acts = torch.full((1, 2, 2, 2), 1e200, dtype=torch.float64)
    with finiteness.checked_at_the_end() as every_step_finite:
        result = T.localization_map(torch.tensor([[-1e200, -1e200]], dtype=torch.float64), acts)
        assert bool(torch.isfinite(result).all()) and not every_step_finite()


def test_finite_steps_pass_and_each_tensor_is_summed_once():
    grads = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    with finiteness.checked_at_the_end() as every_step_finite:
        T.gradcampp_weights(grads, grads)  # checks acts and grads three times each inside
        kept = finiteness._KEPT.get()
        assert kept is not None and sum(tensor is grads for tensor, _ in kept) == 1
        assert every_step_finite()
    assert finiteness._KEPT.get() is None  # the block is closed: checks are immediate again


def test_checks_are_immediate_outside_the_block_and_in_other_threads():
    import threading

    seen = []
    with finiteness.checked_at_the_end():
        worker = threading.Thread(target=lambda: seen.append(finiteness.step_finite(torch.tensor([np.nan]))))
        worker.start()
        worker.join()
    assert seen == [False]  # the other thread checked at once
    assert not finiteness.step_finite(torch.tensor([np.inf]))


@pytest.mark.parametrize("method", sorted(CAM_METHODS))
def test_a_map_costs_one_check_of_its_equations(method, monkeypatch):
    calls = []
    original = finiteness.all_finite
    monkeypatch.setattr(finiteness, "all_finite", lambda x: calls.append(tuple(x.shape)) or original(x))
    tinycam.explain(small_cnn("gap").eval(), images(batch=3), LAST, method, target=1)
    assert len(calls) == 1, calls  # the equations' checks, all in one (the images are checked apart, in capture)


@pytest.mark.parametrize("normalize", [True, False])
def test_explain_names_the_step_that_overflowed(normalize):
    # A and ∂y/∂A both about 1e200 (finite, float64; the scores overflow): the combination Σ_k w_k A^k overflows
    model = small_cnn("gap").eval()
    model[0].append(Scaled(1e200))
    model[1].insert(0, Scaled(1e200))
    with pytest.raises(ValueError, match=r"the weighted combination Σ_k w_k A\^k overflows torch.float64"):
        tinycam.explain(model, images(), "0.5", "gradcam", target=1, normalize=normalize)


def test_explain_names_non_finite_activations():
    model = small_cnn("gap").eval()
    model[0].append(Scaled(float("nan")))
    with pytest.raises(ValueError, match="contains NaN or inf values"):
        tinycam.explain(model, images(), "0.5", "gradcam++", target=1)


def test_explain_gives_the_same_maps_as_the_checked_equations():
    model, x = small_cnn("fc").eval(), images()
    captured = tinycam.capture(model, x, LAST, target=2)
    for method, equation in [("gradcam", T.gradcam), ("gradcam++", T.gradcampp), ("xgradcam", T.xgradcam)]:
        expected = T.normalize(T.upsample(equation(captured.acts, captured.grads), (10, 10)))
        torch.testing.assert_close(tinycam.explain(model, x, LAST, method, target=2), expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalize_halves_only_when_a_span_overflows_and_agrees_with_the_numpy_twin(dtype):
    big = torch.finfo(dtype).max * 0.75  # its span, 1.5 max, overflows
    maps = torch.tensor([[[-big, big], [0.0, big / 3]], [[0.25, 0.5], [1.0, 0.75]], [[3.0, 3.0], [3.0, 3.0]]], dtype=dtype)
    got = T.normalize(maps)
    expected = R.normalize(maps.double().numpy())
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-15)
    assert bool(((got >= 0) & (got <= 1)).all())
    with finiteness.checked_at_the_end() as every_step_finite:  # the overflow is found at the end, not hidden
        T.normalize(maps)
        assert not every_step_finite()
