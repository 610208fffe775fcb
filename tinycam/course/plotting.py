"""Small matplotlib helpers the notebooks share: overlays, image/map grids with an optional shared colourbar,
annotated matrices. Their defaults are the course's: one colormap, text legible at the notebook's width."""

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["HEATMAP_CMAP", "FONT_SIZE", "NOTEBOOK_WIDTH", "to_numpy", "overlay", "colorbar", "show_grid", "annotate"]

# every heatmap of the course: perceptually uniform and colour-blind safe (matplotlib's inferno; jet is neither)
HEATMAP_CMAP = "inferno"
# text size in points of titles, labels and colourbar ticks: at the notebook's 100 dpi a 10 pt title is 14 px high
FONT_SIZE = 10
# the widest figure, in inches at 100 dpi, that JupyterLab's notebook column shows without scaling it down (a wider
# one is shrunk to fit, and its text with it); show_grid keeps its figures this wide or narrower
NOTEBOOK_WIDTH = 9.0


def to_numpy(x):
    """A tensor or array as a NumPy array on the CPU (images (3, H, W) become (H, W, 3) for imshow)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.moveaxis(x, 0, -1) if x.ndim == 3 and x.shape[0] in (1, 3) else x


def overlay(image, heatmap, opacity=0.5, cmap=HEATMAP_CMAP):
    """Lay a map over an image with an opacity that follows the map: per pixel α = opacity · M and
    out = (1 − α) · image + α · cmap(M). Where the map is 0 the image shows unchanged; where it is 1 its colour
    covers the image with the given opacity.

    image: RGB (3, H, W) in [0, 1]; heatmap: M (H, W) in [0, 1] (a normalized map: `tinycam.explain`'s default).
    Returns (3, H, W) like the image (a tensor if the image is one)."""
    rgb, values = to_numpy(image), to_numpy(heatmap)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"image must be RGB of shape (3, H, W), got {tuple(image.shape)}")
    if values.shape != rgb.shape[:2]:
        raise ValueError(f"heatmap must have the image's height and width {rgb.shape[:2]}, got {values.shape}; "
                         "upsample the map to the image first (tinycam.explain returns maps at the input's size)")
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if not np.all(np.isfinite(values)):
        raise ValueError("heatmap holds NaN or infinite values; compute the map from finite inputs")
    if values.min() < -1e-6 or values.max() > 1 + 1e-6:
        raise ValueError(f"heatmap must be in [0, 1], got [{values.min():.3g}, {values.max():.3g}]; normalize it "
                         "first (tinycam.explain(..., normalize=True), or map / map.max() for a map ≥ 0)")
    values = np.clip(values, 0, 1)
    colours = plt.get_cmap(cmap)(values)[..., :3]
    alpha = opacity * values[..., None]
    blended = (1 - alpha) * rgb + alpha * colours
    blended = np.clip(blended, 0, 1).transpose(2, 0, 1)
    return torch.as_tensor(blended, dtype=image.dtype) if isinstance(image, torch.Tensor) else blended


def colorbar(figure, mappable, ax=None, label=None, cax=None):
    """A colourbar for `mappable` (what `ax.imshow` returned) beside `ax` (one axis or a list sharing it), or in the
    axis `cax`; ticks and label at FONT_SIZE. Use it wherever maps are compared by magnitude."""
    if cax is None:
        bar = figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
    else:
        bar = figure.colorbar(mappable, cax=cax)
    bar.ax.tick_params(labelsize=FONT_SIZE - 1)
    if label is not None:
        bar.set_label(label, fontsize=FONT_SIZE)
    return bar


_colorbar = colorbar  # show_grid's parameter `colorbar` shadows the function's name inside it


def show_grid(panels, titles=None, row_labels=None, size=2.0, cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, colorbar=False,
              colorbar_label=None):
    """Draw a grid of panels (a list of rows, each a list of images (3, H, W) in [0, 1] or maps (H, W)).

    All maps share one scale, vmin to vmax (default [0, 1], normalized maps); vmin=None / vmax=None take the
    smallest / largest value over all the grid's maps, so maps of different strength are drawn as such.
    colorbar=True adds one colourbar for all maps, right of the grid. A grid wider than NOTEBOOK_WIDTH is drawn
    with smaller panels so the notebook shows it unscaled, its text at FONT_SIZE."""
    rows, cols = len(panels), max(len(row) for row in panels)
    arrays = [[None if panel is None else to_numpy(panel) for panel in row] for row in panels]
    maps = [panel for row in arrays for panel in row if panel is not None and panel.ndim == 2]
    if maps and vmin is None:
        vmin = min(float(np.min(panel)) for panel in maps)
    if maps and vmax is None:
        vmax = max(float(np.max(panel)) for panel in maps)
    if colorbar and not maps:
        raise ValueError("colorbar=True needs at least one map (H, W) among the panels; the grid holds only images")
    width = min(size * cols + (0.8 if colorbar else 0), NOTEBOOK_WIDTH)
    panel_size = (width - (0.8 if colorbar else 0)) / cols
    figure, axes = plt.subplots(rows, cols, figsize=(width, panel_size * rows + (0.3 if titles else 0)), squeeze=False)
    shown = None
    for r, row in enumerate(arrays):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            panel = row[c] if c < len(row) else None
            if panel is None:
                continue
            # nearest: tiny 64x64 images stay crisp (and the stored PNGs small) when drawn larger
            if panel.ndim == 2:
                shown = ax.imshow(panel, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            else:
                ax.imshow(panel, interpolation="nearest")
            if titles is not None and r == 0:
                ax.set_title(titles[c], fontsize=FONT_SIZE)
        if row_labels is not None:
            axes[r, 0].text(-0.08, 0.5, row_labels[r], transform=axes[r, 0].transAxes, ha="right", va="center",
                            fontsize=FONT_SIZE, rotation=90)
    if not colorbar:
        figure.tight_layout()
        return figure
    bar_space = 0.8 / width  # the grid's right 0.8 inch holds the colourbar, its ticks and its label
    figure.tight_layout(rect=(0, 0, 1 - bar_space, 1))
    top, bottom = axes[0, 0].get_position().y1, axes[-1, 0].get_position().y0
    cax = figure.add_axes((1 - bar_space + 0.08 / width, bottom, 0.15 / width, top - bottom))
    _colorbar(figure, shown, cax=cax, label=colorbar_label)
    return figure


def annotate(ax, matrix, fmt="{:.2f}", cmap="coolwarm", vmin=None, vmax=None):
    """imshow a small matrix with each value written in its cell."""
    matrix = to_numpy(matrix)
    ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, fmt.format(value + 0.0), ha="center", va="center", fontsize=FONT_SIZE - 1)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
