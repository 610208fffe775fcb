"""The explorer follows its controls: changing a widget's value recomputes the map and redraws the picture."""

import torch

from tinycam.course.plotting import overlay
from tinycam.course.widgets import Explorer

from toy_models import LAST, small_cnn

CLASS_NAMES = ["circle", "square", "triangle", "star"]


def small_model():
    return small_cnn("gap", dtype=torch.float32)


def test_each_control_changes_what_is_shown():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ex = Explorer(small_model(), images, layers=[LAST, "0.2"], class_names=CLASS_NAMES)
    assert ex.map.shape == (16, 16) and bytes(ex.picture.value).startswith(b"\x89PNG")
    for control, value in [(ex.image_index, 2), (ex.target, 1), (ex.layer, "0.2"), (ex.method, "gradcam++")]:
        map_before, picture_before = ex.map.clone(), bytes(ex.picture.value)
        control.value = value
        assert not torch.equal(ex.map, map_before), control.description
        assert bytes(ex.picture.value) != picture_before, control.description
    map_before, picture_before = ex.map.clone(), bytes(ex.picture.value)
    ex.opacity.value = 0.9  # only the overlay changes
    assert torch.equal(ex.map, map_before) and bytes(ex.picture.value) != picture_before


def test_an_unusable_choice_shows_the_error_instead_of_a_picture():
    images = torch.rand(2, 3, 16, 16)
    ex = Explorer(small_model(), images, layers=[LAST, "0.2"], class_names=CLASS_NAMES)
    ex.layer.value = "0.2"
    ex.method.value = "cam"  # CAM needs the layer right before GAP + linear
    assert ex.map is None and bytes(ex.picture.value) == b"" and "CAM needs" in ex.message.value
    ex.layer.value = LAST
    assert ex.map is not None and ex.message.value == ""


def test_overlay_blends():
    image, heat = torch.zeros(3, 4, 4), torch.ones(4, 4)
    assert torch.equal(overlay(image, heat, 0.0), image)
    assert overlay(image, heat, 1.0).shape == (3, 4, 4) and float(overlay(image, heat, 1.0).max()) > 0
