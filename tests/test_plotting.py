"""The plotting helpers: an overlay whose opacity follows the map, shared scales and colourbars, legible sizes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from tinycam.course.plotting import FONT_SIZE, HEATMAP_CMAP, NOTEBOOK_WIDTH, colorbar, overlay, show_grid

RNG = np.random.default_rng(0)


def colour(value):
    return np.array(plt.get_cmap(HEATMAP_CMAP)(value)[:3])


def test_a_zero_map_leaves_the_image_untouched():
    image = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for opacity in (0.0, 0.5, 1.0):
        assert torch.equal(overlay(image, torch.zeros(5, 6), opacity), image)


def test_opacity_follows_the_map():
    image = RNG.random((3, 4, 4))
    heat = np.zeros((4, 4))
    heat[0, 0], heat[1, 2] = 1.0, 0.5
    for opacity in (0.3, 1.0):
        out = overlay(image, heat, opacity)
        # map 1: alpha = opacity; map 0.5: alpha = opacity / 2; map 0: the image
        np.testing.assert_allclose(out[:, 0, 0], (1 - opacity) * image[:, 0, 0] + opacity * colour(1.0), atol=1e-12)
        half = opacity / 2
        np.testing.assert_allclose(out[:, 1, 2], (1 - half) * image[:, 1, 2] + half * colour(0.5), atol=1e-12)
        untouched = heat == 0
        np.testing.assert_array_equal(out[:, untouched], image[:, untouched])


def test_overlay_keeps_the_image_type():
    image = torch.rand(3, 4, 4, dtype=torch.float32)
    out = overlay(image, torch.ones(4, 4))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3, 4, 4)
    assert isinstance(overlay(image.numpy(), np.ones((4, 4))), np.ndarray)


@pytest.mark.parametrize("heat, opacity, message", [
    (np.full((4, 4), 2.0), 0.5, "normalize it first"),
    (np.full((4, 4), -0.5), 0.5, "normalize it first"),
    (np.full((4, 4), np.nan), 0.5, "NaN or infinite"),
    (np.ones((3, 3)), 0.5, "height and width"),
    (np.ones((4, 4)), 1.5, "opacity"),
])
def test_overlay_rejects_bad_input_clearly(heat, opacity, message):
    with pytest.raises(ValueError, match=message):
        overlay(np.zeros((3, 4, 4)), heat, opacity)


def map_images(figure):
    return [ax.images[0] for ax in figure.axes if ax.images and ax.images[0].get_array().ndim == 2]


def test_show_grid_draws_maps_on_one_scale():
    strong, weak = np.linspace(0, 0.8, 16).reshape(4, 4), np.linspace(0, 0.1, 16).reshape(4, 4)
    figure = show_grid([[np.zeros((3, 4, 4)), strong, weak]])
    assert [im.get_clim() for im in map_images(figure)] == [(0.0, 1.0)] * 2  # normalized maps: [0, 1]
    assert all(im.get_cmap().name == HEATMAP_CMAP for im in map_images(figure))
    shared = show_grid([[strong], [weak - 0.05]], vmin=None, vmax=None)
    assert [im.get_clim() for im in map_images(shared)] == [(-0.05, 0.8)] * 2  # the grid's smallest and largest
    plt.close("all")


def test_show_grid_colorbar_is_one_bar_for_all_maps():
    maps = [np.linspace(0, 0.3, 16).reshape(4, 4), np.linspace(0, 0.6, 16).reshape(4, 4)]
    without = show_grid([maps])
    figure = show_grid([maps], vmax=None, colorbar=True, colorbar_label="drop of p")
    assert len(figure.axes) == len(without.axes) + 1
    bar = figure.axes[-1]
    assert bar.get_ylabel() == "drop of p" and bar.get_ylim() == pytest.approx((0.0, 0.6))
    with pytest.raises(ValueError, match="at least one map"):
        show_grid([[np.zeros((3, 4, 4))]], colorbar=True)
    plt.close("all")


def test_show_grid_fits_the_notebook_width_with_legible_titles():
    wide = show_grid([[np.zeros((4, 4))] * 8], titles=[f"t{c}" for c in range(8)], size=2.4)
    assert wide.get_size_inches()[0] == pytest.approx(NOTEBOOK_WIDTH)
    assert all(ax.title.get_fontsize() == FONT_SIZE for ax in wide.axes)
    narrow = show_grid([[np.zeros((4, 4))] * 2], size=2.0)
    assert narrow.get_size_inches()[0] == pytest.approx(4.0)
    plt.close("all")


def test_colorbar_helper_labels_and_sizes_its_ticks():
    figure, ax = plt.subplots()
    bar = colorbar(figure, ax.imshow(np.arange(4.0).reshape(2, 2), vmin=0, vmax=3), ax, label="score")
    assert bar.ax.get_ylabel() == "score" and bar.ax.yaxis.label.get_fontsize() == FONT_SIZE
    assert bar.ax.get_ylim() == (0.0, 3.0)
    plt.close(figure)
