"""The explorer follows its controls: changing a widget's value recomputes the map and redraws the picture."""

import matplotlib.pyplot as plt
import pytest
import torch

from tinycam.course import widgets
from tinycam.course.plotting import HEATMAP_CMAP, overlay
from tinycam.course.widgets import Explorer, png_size
from tinycam.explaining import explain

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


def test_an_unusable_choice_removes_the_picture_and_shows_the_error():
    images = torch.rand(2, 3, 16, 16)
    ex = Explorer(small_model(), images, layers=[LAST, "0.2"], class_names=CLASS_NAMES)
    assert ex.picture in ex.widget.children
    ex.layer.value = "0.2"
    ex.method.value = "cam"  # CAM needs the layer right before GAP + linear
    # taken out of the widget, not left as an empty <img> (which a browser draws as a broken-image glyph)
    assert ex.map is None and ex.score is None and ex.picture not in ex.widget.children
    assert "cannot run here" in ex.message.value and "CAM needs" in ex.message.value
    ex.layer.value = LAST
    assert ex.map is not None and ex.widget.children[-1] is ex.picture and "CAM needs" not in ex.message.value


def test_the_picture_is_shown_at_its_pixel_size():
    ex = Explorer(small_model(), torch.rand(1, 3, 16, 16), layers=[LAST], class_names=CLASS_NAMES)
    width, height = png_size(bytes(ex.picture.value))
    assert ex.picture.width == str(width) and width >= 600 and height > 0
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


@pytest.mark.parametrize("activation", [None, "sigmoid", "score"])
def test_the_class_score_and_probability_are_shown(activation):
    model = small_model()
    if activation is not None:
        model.output_activation = activation
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    ex = Explorer(model, images, layers=[LAST], class_names=CLASS_NAMES)
    ex.image_index.value, ex.target.value = 1, 2
    with torch.no_grad():
        scores = model(images[1:2])
    assert ex.score == pytest.approx(float(scores[0, 2]), abs=1e-6)
    expected = {None: scores.softmax(dim=1), "sigmoid": torch.sigmoid(scores), "score": None}[activation]
    if expected is None:
        assert ex.probability is None and "p =" not in ex.message.value
    else:
        assert ex.probability == pytest.approx(float(expected[0, 2]), abs=1e-6)
        assert f"p = {ex.probability:.3f}" in ex.message.value
    assert f"y = {ex.score:+.2f}" in ex.message.value and "triangle" in ex.message.value
    assert model.training is False  # left as found


def drawn_figure(monkeypatch, ex, **change):
    """Set the controls and return the matplotlib figure the explorer drew (caught before it is closed)."""
    figures = []
    monkeypatch.setattr(widgets.plt, "close", figures.append)
    for name, value in change.items():
        getattr(ex, name).value = value
    monkeypatch.undo()
    plt.close("all")
    return figures[-1]


def test_unnormalized_map_keeps_its_scale_and_gets_a_colourbar(monkeypatch):
    model, images = small_model(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    ex = Explorer(model, images, layers=[LAST], class_names=CLASS_NAMES)
    normalized = ex.map.clone()
    assert torch.equal(normalized, explain(model, images[:1], LAST, "gradcam", 0)[0])
    picture_before = bytes(ex.picture.value)
    figure = drawn_figure(monkeypatch, ex, normalized=False)
    raw = explain(model, images[:1], LAST, "gradcam", 0, normalize=False)[0]
    assert torch.equal(ex.map, raw) and float(raw.max()) != pytest.approx(1.0)
    assert bytes(ex.picture.value) != picture_before
    image_ax, map_ax, overlay_ax, bar_ax = figure.axes  # the map's colourbar is the fourth axis
    shown = map_ax.images[0]
    assert shown.get_cmap().name == HEATMAP_CMAP and shown.get_clim() == pytest.approx((0.0, float(raw.max())))
    assert bar_ax.get_ylim() == pytest.approx((0.0, float(raw.max()))) and bar_ax.get_ylabel() == "map value"
    assert "own scale" in map_ax.get_title()
    figure = drawn_figure(monkeypatch, ex, normalized=True)
    assert figure.axes[1].images[0].get_clim() == (0.0, 1.0) and torch.equal(ex.map, normalized)


def test_overlay_blends():
    image, heat = torch.zeros(3, 4, 4), torch.ones(4, 4)
    assert torch.equal(overlay(image, heat, 0.0), image)
    assert overlay(image, heat, 1.0).shape == (3, 4, 4) and float(overlay(image, heat, 1.0).max()) > 0
