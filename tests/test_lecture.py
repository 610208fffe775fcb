"""`python -m tinycam lecture` prints the worked example; the data files hold what the seeds say."""

import subprocess
import sys

import numpy as np
import pytest

from tinycam import reference
from tinycam.course import lecture


def test_lecture_command_prints_every_step():
    result = subprocess.run([sys.executable, "-m", "tinycam", "lecture"], capture_output=True, text=True, check=True)
    out = result.stdout
    for expected in [
        "alpha_1^c = (2 + 3 + 4 + 2) / 4 = 2.750",
        "alpha_2^c = (3 + 5 + 6 + 3) / 4 = 4.250",
        "alpha_3^c = (0.1 - 0.1 + 0.2 + 0.2) / 4 = 0.100",
        "       8.925   -2.025\n      16.125    2.600",  # L
        "       8.925    0.000\n      16.125    2.600",  # ReLU(L)
        "background kernel",
    ]:
        assert expected in out, expected
    assert out.index("Step 1") < out.index("Step 2") < out.index("Step 3") < out.index("Step 4") < out.index("Step 5")


def test_cli_lists_commands_and_rejects_unknown_ones():
    listing = subprocess.run([sys.executable, "-m", "tinycam"], capture_output=True, text=True)
    assert listing.returncode == 0 and "lecture" in listing.stdout
    unknown = subprocess.run([sys.executable, "-m", "tinycam", "lectur"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown command 'lectur'" in unknown.stderr


def test_walk_through_follows_the_data():
    # the text is computed, not typed: change an input and the printed alpha changes
    example = lecture.worked_example()
    example["grads"][0] *= 2
    assert "= 5.500" in lecture.walk_through(example)


def test_worked_example_shapes():
    ex = lecture.worked_example()
    assert ex["acts"].shape == ex["grads"].shape == (3, 2, 2)
    assert ex["alphas"].shape == (3,) and ex["L"].shape == ex["relu_L"].shape == (2, 2)


def test_three_dogs_gives_grad_cam_weights_in_the_footprints_ratio_and_grad_cam_pp_nearly_evens_them():
    acts = lecture.three_dogs()
    assert acts.shape == (3, 12, 12) and set(np.unique(acts)) == {0.0, 1.0}
    assert acts.sum(axis=(1, 2)).tolist() == [36.0, 9.0, 1.0]
    assert (acts.sum(axis=0) <= 1).all()  # the dogs do not overlap
    grads = acts.copy()  # the gradient of S = Σ ReLU(A − 1/2): 1 on each dog, 0 elsewhere
    gradcam = reference.gradcam_weights(grads)
    assert gradcam == pytest.approx(np.array([36.0, 9.0, 1.0]) / 144, rel=1e-12)
    # by hand: α = 1/(2 + g ΣA) = 1/(2 + n) on the n pixels of a dog, so w = n/(2 + n): 36/38, 9/11, 1/3
    pp = reference.gradcampp_weights(acts, grads)
    assert pp == pytest.approx([36 / 38, 9 / 11, 1 / 3], rel=1e-12)
    assert (pp / pp[2]).round(2).tolist() == [2.84, 2.45, 1.0]
    with pytest.raises(ValueError, match="size >= 12"):
        lecture.three_dogs(size=8)
