"""The convolution arithmetic: every number of the CNN slides (004), and agreement with torch on random cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinycam import conv
from tinycam.course import lecture

EX = lecture.conv_examples()


def test_slide_stride_two_example():
    s = EX["stride_example"]
    y = conv.conv2d(s["input"], s["kernel"], stride=int(s["stride"]), padding=int(s["padding"]))
    np.testing.assert_array_equal(y[0, :2], [-15, 6])  # the two values the slide shows
    np.testing.assert_array_equal(y, s["output"])
    assert conv.output_size(6, 3, stride=2, padding=1) == 3


def test_slide_convolution_and_its_matrix():
    t = EX["transposed_example"]
    y = conv.conv2d(t["input"], t["kernel"])
    np.testing.assert_array_equal(y, [[55, 52], [57, 50]])
    C = conv.conv_matrix((4, 4), t["kernel"])
    assert C.shape == (4, 16)
    np.testing.assert_array_equal(C, t["conv_matrix"])
    np.testing.assert_array_equal(C @ t["input"].ravel(), y.ravel())


def test_slide_transposed_convolution():
    t = EX["transposed_example"]
    expected = [[55, 162, 159, 52], [167, 323, 319, 154], [169, 264, 326, 204], [57, 107, 164, 100]]
    np.testing.assert_array_equal(t["transposed_output"], expected)
    out = conv.conv_transpose2d(t["conv_output"], t["kernel"])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal((t["conv_matrix"].T @ t["conv_output"].ravel()).reshape(4, 4), expected)
    assert conv.transposed_output_size(2, 3) == 4


@pytest.mark.parametrize("mode", ["zeros", "replicate", "symmetric", "circular"])
def test_slide_padding_tables(mode):
    p = EX["padding_example"]
    padded = conv.pad(p["input"], int(p["padding"]), mode)
    assert padded.shape == (9, 9)
    np.testing.assert_array_equal(padded, p["padded"][mode])


def test_slide_reflective_padding_is_not_torchs_reflect():
    p = EX["padding_example"]
    torch_reflect = F.pad(torch.tensor(p["input"])[None, None], (2, 2, 2, 2), mode="reflect")[0, 0].numpy()
    assert not np.array_equal(torch_reflect, p["padded"]["symmetric"])
    np.testing.assert_array_equal(conv.pad(p["input"], 2, "reflect"), torch_reflect)


@pytest.mark.parametrize("mode, torch_mode", [("zeros", "constant"), ("replicate", "replicate"), ("circular", "circular")])
def test_padding_matches_torch(mode, torch_mode):
    x = np.random.default_rng(0).normal(size=(5, 6))
    expected = F.pad(torch.tensor(x)[None, None], (2, 2, 2, 2), mode=torch_mode)[0, 0].numpy()
    np.testing.assert_array_equal(conv.pad(x, 2, mode), expected)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(3, 9), st.integers(3, 9), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2),
    st.integers(0, 2**31 - 1),
)
def test_conv2d_matches_torch(h, w, k, stride, padding, dilation, seed):
    assume(min(h, w) + 2 * padding >= conv.dilated_receptive_field(k, dilation))
    rng = np.random.default_rng(seed)
    x, kernel = rng.normal(size=(h, w)), rng.normal(size=(k, k))
    expected = F.conv2d(torch.tensor(x)[None, None], torch.tensor(kernel)[None, None], stride=stride,
                        padding=padding, dilation=dilation)[0, 0].numpy()
    np.testing.assert_allclose(conv.conv2d(x, kernel, stride, padding, dilation), expected, rtol=1e-10, atol=1e-12)
    assert expected.shape == (conv.output_size(h, k, stride, padding, dilation),
                              conv.output_size(w, k, stride, padding, dilation))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_conv_transpose_matches_torch_and_the_matrix(h, w, k, stride, seed):
    rng = np.random.default_rng(seed)
    y, kernel = rng.normal(size=(h, w)), rng.normal(size=(k, k))
    expected = F.conv_transpose2d(torch.tensor(y)[None, None], torch.tensor(kernel)[None, None], stride=stride)
    out = conv.conv_transpose2d(y, kernel, stride)
    np.testing.assert_allclose(out, expected[0, 0].numpy(), rtol=1e-10, atol=1e-12)
    # and it is Cᵀ of the convolution that maps out.shape back to y.shape
    C = conv.conv_matrix(out.shape, kernel, stride)
    np.testing.assert_allclose(C.T @ y.ravel(), out.ravel(), rtol=1e-10, atol=1e-12)
    padding = int(rng.integers(0, k))
    if k + (min(h, w) - 1) * stride - 2 * padding > 0:
        cropped = F.conv_transpose2d(torch.tensor(y)[None, None], torch.tensor(kernel)[None, None], stride=stride,
                                     padding=padding)[0, 0].numpy()
        np.testing.assert_allclose(conv.conv_transpose2d(y, kernel, stride, padding), cropped, rtol=1e-10, atol=1e-12)


def test_receptive_field_recursion_by_hand():
    # conv3 -> conv3 -> pool2/2 -> conv3: 3, 5, 6, 6 + 2·2 = 10
    assert conv.receptive_field([3, 3, 2, 3], [1, 1, 2, 1]) == [3, 5, 6, 10]
    assert conv.receptive_field([3, 3, 3]) == [3, 5, 7]
    assert conv.dilated_receptive_field(3, 2) == 5 and conv.dilated_receptive_field(3, 1) == 3


def test_receptive_field_matches_gradient_support():
    # the receptive field of the last layer is the extent of the input pixels one output pixel depends on
    kernels, strides = [3, 2, 3, 3], [1, 2, 1, 2]
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    y = x
    for k, s in zip(kernels, strides):
        y = F.conv2d(y, torch.ones(1, 1, k, k), stride=s)
    y[0, 0, 3, 3].backward()
    rows = torch.nonzero(x.grad[0, 0].sum(1))
    assert int(rows.max() - rows.min() + 1) == conv.receptive_field(kernels, strides)[-1]


def test_depthwise_separable_cost():
    h = w = 56
    regular, separable = conv.conv_cost(h, w, 128, 128, 3), conv.depthwise_separable_cost(h, w, 128, 128, 3)
    assert regular == 128 * 128 * 9 * 56 * 56
    assert separable / regular == pytest.approx(1 / 128 + 1 / 9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: conv.output_size(4, 7), "larger than the padded input"),
        (lambda: conv.output_size(8, 3, stride=0), "stride must be an integer >= 1"),
        (lambda: conv.pad(np.ones((3, 3)), 1, "mirror"), "unknown padding mode"),
        (lambda: conv.pad(np.ones((3, 3)), 3, "reflect"), "reflect padding needs"),
        (lambda: conv.conv2d(np.ones(3), np.ones((2, 2))), "2-D input"),
        (lambda: conv.receptive_field([3, 3], [1]), "one stride per kernel"),
        (lambda: conv.transposed_output_size(1, 3, padding=2), "crops away the whole output"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
