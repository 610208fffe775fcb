"""tinycam.torch_reference mirrors tinycam.reference name for name: same equations, float64 agreement to ~1e-10."""

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycam import reference as R
from tinycam import torch_reference
from tinycam.course import lecture

EXAMPLE = lecture.worked_example()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

def _derivatives(a, g, sign):
    with np.errstate(over="ignore"):  # huge test gradients: an infinite g³ must be refused by both twins
        return a, g**2, g**3 * sign


def _some_dead_channels(a, rng):
    if rng.random() < 0.5:
        return a
    a = a.copy()
    a[..., rng.random(a.shape[-3]) < 0.5, :, :] = 0.0
    return a


# how each mirrored function is called: name -> builds its arguments from (acts, grads, rng)
CALLS = {
    "gap": lambda a, g, rng: (a,),
    "gradcam_weights": lambda a, g, rng: (g,),
    # weights per channel (..., K) or per activation (..., K, H, W)
    "weighted_combination": lambda a, g, rng: (rng.normal(size=a.shape if rng.random() < 0.5 else a.shape[:-2]), a),
    "localization_map": lambda a, g, rng: (rng.normal(size=a.shape[:-2]), a),
    "gradcam": lambda a, g, rng: (a, g),
    "counterfactual_weights": lambda a, g, rng: (g,),
    "counterfactual": lambda a, g, rng: (a, g),
    "positive_gradcam_weights": lambda a, g, rng: (g,),
    "positive_gradcam": lambda a, g, rng: (a, g),
    "cam": lambda a, g, rng: (a, rng.normal(size=a.shape[:-2])),
    "cam_weights_from_gradients": lambda a, g, rng: (g,),
    "gradcampp_alphas": lambda a, g, rng: (a, g),
    "gradcampp_alphas_from_derivatives": lambda a, g, rng: _derivatives(a, g, rng.choice([1.0, -1.0])),
    "gradcampp_weights": lambda a, g, rng: (a, g),
    "gradcampp": lambda a, g, rng: (a, g),
    "hirescam_weights": lambda a, g, rng: (g,),
    "hirescam": lambda a, g, rng: (a, g),
    "layercam_weights": lambda a, g, rng: (g,),
    "layercam": lambda a, g, rng: (a, g),
    # half the time some channels sum to exactly 0 (all zero, as after a ReLU): their weight must be 0 in both
    "xgradcam_weights": lambda a, g, rng: (_some_dead_channels(a, rng), g),
    "xgradcam": lambda a, g, rng: (_some_dead_channels(a, rng), g),
    "scorecam_masks": lambda a, g, rng: (a, (int(rng.integers(1, 9)), int(rng.integers(1, 9)))),
    # masked scores (..., K) and the baseline's score (...), drawn from the test's arrays (their scales, their poison)
    "scorecam_weights": lambda a, g, rng: (a[..., 0, 0], g[..., 0, 0, 0]),
    "normalize": lambda a, g, rng: (a,),
    "upsample": lambda a, g, rng: (a, (int(rng.integers(1, 9)), int(rng.integers(1, 9)))),
}


def _agree(name, args, device="cpu"):
    expected = getattr(R, name)(*args)
    torch_args = [torch.tensor(x, dtype=torch.float64, device=device) if isinstance(x, np.ndarray) else x for x in args]
    got = getattr(torch_reference, name)(*torch_args)
    assert got.dtype == torch.float64 and got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-10, atol=1e-10, err_msg=name)


def _public_functions(module):
    return {name for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")}


def test_the_two_implementations_have_the_same_names_and_signatures():
    assert _public_functions(R) == _public_functions(torch_reference) == set(R.__all__) == set(CALLS)
    for name in R.__all__:
        assert inspect.signature(getattr(R, name)).parameters.keys() == inspect.signature(getattr(torch_reference, name)).parameters.keys()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_agree_on_the_lecture_numbers(name, device):
    _agree(name, CALLS[name](EXAMPLE["acts"], EXAMPLE["grads"], np.random.default_rng(0)), device)


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    K=st.integers(1, 5), H=st.integers(1, 7), W=st.integers(1, 7), seed=st.integers(0, 2**31 - 1),
    zero_fraction=st.sampled_from([0.0, 0.5]),
)
def test_agree_on_random_inputs(name, batch, K, H, W, seed, zero_fraction):
    rng = np.random.default_rng(seed)
    shape = (*batch, K, H, W)
    acts = rng.normal(size=shape) * rng.choice([1e-3, 1, 100])
    grads = rng.normal(size=shape) * rng.choice([1e-8, 1e-3, 1, 10])
    grads[rng.random(shape) < zero_fraction] = 0.0  # exact zeros: α must be 0 there in both
    _agree(name, CALLS[name](acts, grads, rng))


def test_float32_stays_float32_and_finite_for_tiny_gradients():
    acts = torch.rand(2, 4, 5, 5)
    grads = torch.rand(2, 4, 5, 5) * 1e-3
    for name in ("gradcam", "gradcampp", "counterfactual"):
        out = getattr(torch_reference, name)(acts, grads)
        assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    alphas = torch_reference.gradcampp_alphas(acts, torch.zeros_like(grads))
    assert bool((alphas == 0).all())


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: torch_reference.gradcam(torch.ones(3, 2, 2), torch.ones(3, 2, 3)), ValueError, "same shape"),
        (lambda: torch_reference.gradcam_weights(torch.ones(4, 4)), ValueError, r"\(\.\.\., K, H, W\)"),
        (lambda: torch_reference.gradcam(torch.full((2, 2, 2), float("nan")), torch.ones(2, 2, 2)), ValueError, "NaN or inf"),
        (lambda: torch_reference.gap(torch.ones(2, 2, dtype=torch.int64)), ValueError, "floating-point"),
        (lambda: torch_reference.weighted_combination(torch.ones(2), torch.ones(3, 2, 2)), ValueError, r"weights must have shape \(3,\)"),
        (lambda: torch_reference.upsample(torch.ones(2, 2), (3,)), ValueError, "size must be"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- the twins under stress: one behaviour, never NaN -------------------------------------------------------------


def _both(name, *args):
    """(NumPy result or the error's type, torch result or the error's type), float64."""
    outcomes = []
    for module, convert in [(R, np.asarray), (torch_reference, lambda x: torch.tensor(x, dtype=torch.float64))]:
        try:
            outcomes.append(np.asarray(getattr(module, name)(*[convert(a) if isinstance(a, np.ndarray) else a
                                                               for a in args])))
        except ValueError as error:
            outcomes.append(type(error))
    return outcomes


def test_a_constant_map_upsampled_normalizes_to_blank_in_both():
    for value in (1.0, 3e-7, 12345.678, -2.5):
        up = R.upsample(np.full((2, 1, 1), value), (32, 32))
        assert np.all(R.normalize(up) == 0)
        up_torch = torch_reference.upsample(torch.full((2, 1, 1), value, dtype=torch.float32), (32, 32))
        assert bool((torch_reference.normalize(up_torch) == 0).all())


def test_a_small_real_variation_still_normalizes():
    m = np.array([[1.0, 1.0 + 1e-9], [1.0, 1.0]])
    np.testing.assert_allclose(R.normalize(m), [[0, 1], [0, 0]])
    np.testing.assert_allclose(torch_reference.normalize(torch.tensor(m)).numpy(), [[0, 1], [0, 0]])


def test_normalize_takes_the_whole_float64_range():
    m = np.array([[-1e308, 1e308], [0.0, 5e307]])
    numpy_result, torch_result = _both("normalize", m)
    np.testing.assert_allclose(numpy_result, [[0, 1], [0.5, 0.75]], atol=1e-15)
    np.testing.assert_allclose(torch_result, numpy_result, atol=1e-15)


@pytest.mark.parametrize(
    "name, args",
    [
        ("weighted_combination", (np.array([np.nan, 1.0]), np.ones((2, 2, 2)))),
        ("weighted_combination", (np.array([1e308, 1e308]), np.full((2, 2, 2), 1e308))),
        ("weighted_combination", (np.full((2, 2, 2), 1e200), np.full((2, 2, 2), 1e200))),  # per activation
        ("cam", (np.ones((2, 2, 2)), np.array([np.inf, 1.0]))),
        ("gradcam", (np.full((2, 2, 2), 1e308), np.full((2, 2, 2), 1e10))),
        ("gradcampp_alphas", (np.ones((2, 2, 2)), np.full((2, 2, 2), 1e103))),
        ("gradcampp", (np.full((2, 2, 2), 1e300), np.full((2, 2, 2), 1e10))),
        ("gradcampp_alphas_from_derivatives", (np.full((1, 2, 2), 1e308), np.ones((1, 2, 2)), np.full((1, 2, 2), 1e10))),
        ("hirescam", (np.full((2, 2, 2), 1e200), np.full((2, 2, 2), 1e200))),
        ("layercam", (np.full((2, 2, 2), 1e200), np.full((2, 2, 2), 1e200))),
        ("xgradcam_weights", (np.full((2, 2, 2), 1e200), np.full((2, 2, 2), 1e200))),  # Σ A·g overflows
        ("xgradcam_weights", (np.full((2, 2, 2), 1e308), np.ones((2, 2, 2)))),  # Σ A overflows
        ("xgradcam_weights", (np.array([[[1e300, -1e300], [1e-300, 0.0]]]), np.array([[[1e8, 0.0], [0.0, 0.0]]]))),  # w
        ("scorecam_weights", (np.array([1.0, np.nan]), np.array(0.0))),
        ("scorecam_weights", (np.array([1.0, 2.0]), np.array(np.inf))),
        ("scorecam_weights", (np.array([1e308, 1.0]), np.array(-1e308))),  # the increase overflows
        ("scorecam_masks", (np.full((1, 2, 2), np.nan), (3, 3))),
    ],
)
def test_overflow_and_non_finite_weights_raise_in_both(name, args):
    assert _both(name, *args) == [ValueError, ValueError]


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=30, deadline=None)
@given(
    scale_a=st.sampled_from([1e-300, 1e-5, 1.0, 1e100, 1e200, 1e307]),
    scale_g=st.sampled_from([1e-300, 1e-5, 1.0, 1e100, 1e200, 1e307]),
    poison=st.sampled_from([None, np.nan, np.inf, -np.inf]),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_twins_agree_or_both_refuse_at_any_magnitude(name, scale_a, scale_g, poison, seed):
    rng = np.random.default_rng(seed)
    acts, grads = rng.normal(size=(2, 3, 4, 4)) * scale_a, rng.normal(size=(2, 3, 4, 4)) * scale_g
    if poison is not None:
        (acts if rng.random() < 0.5 else grads)[0, 1, 2, 3] = poison
    numpy_result, torch_result = _both(name, *CALLS[name](acts, grads, rng))
    if isinstance(numpy_result, type) or isinstance(torch_result, type):
        assert numpy_result is torch_result is ValueError
    else:
        assert np.all(np.isfinite(numpy_result)) and np.all(np.isfinite(torch_result))
        np.testing.assert_allclose(torch_result, numpy_result, rtol=1e-9, atol=1e-300)
