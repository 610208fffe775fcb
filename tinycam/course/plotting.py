"""Small matplotlib helpers the notebooks share: overlays, image/map grids, annotated matrices."""

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["HEATMAP_CMAP", "to_numpy", "overlay", "show_grid", "annotate"]

# every heatmap of the course: perceptually uniform and colour-blind safe (matplotlib's inferno; jet is neither)
HEATMAP_CMAP = "inferno"


def to_numpy(x):
    """A tensor or array as a NumPy array on the CPU (images (3, H, W) become (H, W, 3) for imshow)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.moveaxis(x, 0, -1) if x.ndim == 3 and x.shape[0] in (1, 3) else x


def overlay(image, heatmap, opacity=0.5, cmap=HEATMAP_CMAP):
    """Blend an RGB image (3, H, W) in [0, 1] with a colour-mapped map (H, W) in [0, 1]: (1 − a)·image + a·colour.
    Returns (3, H, W) like the image (a tensor if the image is one)."""
    colours = plt.get_cmap(cmap)(to_numpy(heatmap))[..., :3]
    blended = (1 - opacity) * to_numpy(image) + opacity * colours
    blended = np.clip(blended, 0, 1).transpose(2, 0, 1)
    return torch.as_tensor(blended, dtype=image.dtype) if isinstance(image, torch.Tensor) else blended


def show_grid(panels, titles=None, row_labels=None, size=2.0, cmap=HEATMAP_CMAP):
    """Draw a grid of panels (a list of rows, each a list of images (3, H, W) or maps (H, W) in [0, 1])."""
    rows, cols = len(panels), max(len(row) for row in panels)
    figure, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for r, row in enumerate(panels):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(row) or row[c] is None:
                continue
            panel = to_numpy(row[c])
            # nearest: tiny 64x64 images stay crisp (and the stored PNGs small) when drawn larger
            ax.imshow(panel, cmap=cmap if panel.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if titles is not None and r == 0:
                ax.set_title(titles[c], fontsize=9)
        if row_labels is not None:
            axes[r, 0].text(-0.08, 0.5, row_labels[r], transform=axes[r, 0].transAxes, ha="right", va="center",
                            fontsize=9, rotation=90)
    figure.tight_layout()
    return figure


def annotate(ax, matrix, fmt="{:.2f}", cmap="coolwarm", vmin=None, vmax=None):
    """imshow a small matrix with each value written in its cell."""
    matrix = to_numpy(matrix)
    ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, fmt.format(value + 0.0), ha="center", va="center", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
