"""An ipywidgets explorer: pick the image, class, layer, method and overlay opacity; see image, map and overlay.

    from tinycam.course.widgets import Explorer
    Explorer(model, images, layers=["features.10", "features.5"], class_names=CLASSES)

The picture is rendered with matplotlib into an `ipywidgets.Image` (PNG bytes) shown at its own pixel size, so it
updates in any front end and is never blurred by scaling. `explorer.map` holds the map currently shown (H, W) and
`explorer.score` / `explorer.probability` the class's score y^c and probability, which is what the tests check.
"""

import io
import struct
import threading

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from tinycam.cams import CAM_METHODS
from tinycam.capturing import capture
from tinycam.course.plotting import FONT_SIZE, HEATMAP_CMAP, colorbar, overlay
from tinycam.explaining import explain

# the picture: three panels, 8.4 × 3 inches at 100 dpi, about 840 × 300 px, narrower than the notebook column
FIGURE_SIZE, DPI = (8.4, 3.0), 100
PROBABILITIES = {"sigmoid": torch.sigmoid, "softmax": lambda scores: scores.softmax(dim=1)}


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, read from its header (the IHDR chunk)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG: the bytes do not start with the PNG signature")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


class Explorer:
    """Controls and a picture (image | map | overlay) that follows them; display it as the last line of a cell.

    The class's score y^c (and its probability, by the model's `output_activation`: "sigmoid" for the course's
    multi-label models, else softmax) is shown above the map. Unticking "normalized" shows the map on its own scale
    (`explain(..., normalize=False)`) with a colourbar, so a weak map for an absent class looks weak."""

    def __init__(self, model, images, layers, class_names, methods=None):
        if images.ndim != 4:
            raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
        self.model, self.images = model, images
        self.image_index = W.IntSlider(0, 0, len(images) - 1, description="image")
        self.target = W.Dropdown(options=[(name, c) for c, name in enumerate(class_names)], description="class")
        self.layer = W.Dropdown(options=list(layers), description="layer")
        self.method = W.Dropdown(options=list(methods or CAM_METHODS), value="gradcam", description="method")
        self.opacity = W.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="opacity")
        self.normalized = W.Checkbox(True, description="normalized to [0, 1]", indent=False)
        self.picture = W.Image(format="png")
        self.message = W.HTML()
        controls = [self.image_index, self.target, self.layer, self.method, self.opacity, self.normalized]
        for control in controls:
            control.observe(lambda _change: self.render(), names="value")
        self.widget = W.VBox([W.HBox(controls[:3]), W.HBox(controls[3:]), self.message, self.picture])
        self._with_picture = self.widget.children
        self._without_picture = self.widget.children[:-1]
        self.map = self.score = self.probability = None
        # one render at a time, each from one reading of the controls: should a kernel handle widget messages on two
        # threads (ipykernel 7 has subshells), interleaved renders would show one choice's message beside another's
        # picture
        self._rendering = threading.RLock()
        self.render()

    def _score(self, image, target):
        """y^c for class `target` and its probability (None for a model whose output_activation is "score")."""
        scores = capture(self.model, image, None, target, gradients=False).scores
        to_probabilities = PROBABILITIES.get(getattr(self.model, "output_activation", "softmax"))
        return float(scores[0, target]), None if to_probabilities is None else float(to_probabilities(scores)[0, target])

    def render(self):
        """Recompute the map for the current choices and redraw; an unusable choice (CAM on a layer without GAP)
        takes the picture out of the widget and shows its error message instead."""
        with self._rendering:
            self._render()

    def _render(self):
        index, target, class_name, layer = self.image_index.value, self.target.value, self.target.label, self.layer.value
        method, opacity, normalize = self.method.value, self.opacity.value, self.normalized.value
        image = self.images[index : index + 1]
        try:
            heatmap = explain(self.model, image, layer, method, target, normalize=normalize)
        except ValueError as error:
            self.map = self.score = self.probability = None
            self.widget.children = self._without_picture  # removed, not emptied: an empty Image is a broken glyph
            self.message.value = f"<b>{method}</b> cannot run here: {error}"
            return
        heatmap = heatmap[0].detach()
        score, probability = self._score(image, target)
        strength = f"y = {score:+.2f}" + ("" if probability is None else f", p = {probability:.3f}")
        titles = ["image", f"{method} map ({'normalized' if normalize else 'own scale'})\n{class_name}: {strength}",
                  "overlay"]
        png = self._draw(image[0].detach().cpu(), heatmap.cpu(), normalize, opacity, titles)
        self.map, self.score, self.probability = heatmap, score, probability
        self.message.value = f"class <b>{class_name}</b>: score {strength}"
        self.picture.value = png
        self.picture.width = str(png_size(png)[0])  # shown at its pixel size (height follows), neither stretched nor blurred
        self.widget.children = self._with_picture

    @staticmethod
    def _draw(rgb, heatmap, normalize, opacity, titles):
        """The PNG: image | map (with its colourbar) | overlay."""
        low, high = (0.0, 1.0) if normalize else (min(0.0, float(heatmap.min())), float(heatmap.max()))
        shown = heatmap if normalize else (heatmap - low) / max(high - low, 1e-12)  # opacity follows the map
        figure, axes = plt.subplots(1, 3, figsize=FIGURE_SIZE, layout="constrained")  # room for the colourbar
        axes[0].imshow(rgb.permute(1, 2, 0).numpy())
        mapped = axes[1].imshow(heatmap.numpy(), cmap=HEATMAP_CMAP, vmin=low, vmax=high)
        axes[2].imshow(overlay(rgb, shown, opacity).permute(1, 2, 0).numpy())
        for ax, title in zip(axes, titles):
            ax.set_title(title, fontsize=FONT_SIZE)
            ax.axis("off")
        colorbar(figure, mapped, axes[1], label=None if normalize else "map value")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
        plt.close(figure)
        return buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
