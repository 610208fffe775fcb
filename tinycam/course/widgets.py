"""An ipywidgets explorer: pick the image, class, layer, method and overlay opacity; see image, map and overlay.

    from tinycam.course.widgets import Explorer
    Explorer(model, images, layers=["features.10", "features.5"], class_names=CLASSES)

The picture is rendered with matplotlib into an `ipywidgets.Image` (PNG bytes), so it updates in any front end,
and `explorer.map` holds the map currently shown (H, W), which is what the tests check.
"""

import io

import ipywidgets as W
import matplotlib.pyplot as plt

from tinycam.cams import CAM_METHODS
from tinycam.course.plotting import overlay
from tinycam.explaining import explain


class Explorer:
    """Controls and a picture (image | map | overlay) that follows them; display it as the last line of a cell."""

    def __init__(self, model, images, layers, class_names, methods=None):
        if images.ndim != 4:
            raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
        self.model, self.images = model, images
        self.image_index = W.IntSlider(0, 0, len(images) - 1, description="image")
        self.target = W.Dropdown(options=[(name, c) for c, name in enumerate(class_names)], description="class")
        self.layer = W.Dropdown(options=list(layers), description="layer")
        self.method = W.Dropdown(options=list(methods or CAM_METHODS), value="gradcam", description="method")
        self.opacity = W.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="opacity")
        self.picture = W.Image(format="png")
        self.message = W.HTML()
        controls = [self.image_index, self.target, self.layer, self.method, self.opacity]
        for control in controls:
            control.observe(lambda _change: self.render(), names="value")
        self.widget = W.VBox([W.HBox(controls[:3]), W.HBox(controls[3:]), self.message, self.picture])
        self.map = None
        self.render()

    def render(self):
        """Recompute the map for the current choices and redraw; an unusable choice (CAM on a layer without GAP)
        shows its error message instead of a picture."""
        image = self.images[self.image_index.value : self.image_index.value + 1]
        try:
            self.map = explain(self.model, image, self.layer.value, self.method.value, self.target.value)[0]
        except ValueError as error:
            self.map, self.message.value, self.picture.value = None, f"<b>{self.method.value}</b>: {error}", b""
            return
        self.message.value = ""
        figure, axes = plt.subplots(1, 3, figsize=(7.5, 2.7))
        rgb = image[0].detach().cpu()
        panels = [rgb.permute(1, 2, 0), self.map.cpu(), overlay(rgb, self.map, self.opacity.value).permute(1, 2, 0)]
        panels = [panel.numpy() for panel in panels]
        for ax, panel, title in zip(axes, panels, ["image", f"{self.method.value} map", "overlay"]):
            ax.imshow(panel, cmap="jet" if panel.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        plt.close(figure)
        self.picture.value = buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
