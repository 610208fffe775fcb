"""Sanity checks for maps (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency Maps"): does the map change when
the model it claims to explain is destroyed?

Model parameter randomization (section 3): re-initialize the layers from the top (the output) down, one more at each
step (`cascading_randomization`), or one layer at a time (`independent_randomization`), and compare each method's map
on the randomized model with its map on the trained one (`randomization_similarity`: Spearman's rank correlation
with and without absolute values, and SSIM, from `tinycam.metrics`). A map that stays the same explains the image,
not the model. The data randomization test (section 4) compares with a model trained on shuffled labels:
`tinycam.load_model("gap_shuffled")`.

Every randomized model is a deep copy: the user's model is never changed. The re-initialization, seeded: every
parameter tensor of a randomized layer (its weight, its bias) is redrawn from N(0, s²), with s the standard deviation
of that tensor's trained values (0 for a one-value tensor, which then becomes 0). Keeping each tensor's own scale, not
drawing afresh with the module's `reset_parameters` (Kaiming-uniform), keeps the activations of the randomized network
in the trained range, so a map changes because the weights' structure is gone, not because their size changed (and
`reset_parameters` draws from torch's global generator, which a library call should not consume). Layer i of the
top-down order (`randomizable_layers`) is redrawn from a generator seeded by (seed, i), so it gets the same values in
the cascade and on its own.
"""

import copy
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tinycam import metrics
from tinycam.capturing import Layer, Target, capture, check_images
from tinycam.explaining import explain

__all__ = [
    "randomizable_layers",
    "randomize_layers",
    "cascading_randomization",
    "independent_randomization",
    "comparable_maps",
    "Similarity",
    "randomization_similarity",
]


def randomizable_layers(model: nn.Module) -> list[str]:
    """The dotted names of the modules that hold parameters of their own (convs, linear layers, BatchNorms), from the
    output down: the reverse of their registration order, which is the order of the forward pass in a sequential
    model such as `tinycam.models`' (GapNet: classifier, features.9, features.7, features.4, features.1)."""
    names = [name for name, module in model.named_modules() if next(module.parameters(recurse=False), None) is not None]
    if not names:
        raise ValueError("the model has no parameters to randomize")
    return names[::-1]


def _generator(seed: int, position: int) -> torch.Generator:
    """A CPU generator seeded by (seed, position), independent streams for different pairs (NumPy's SeedSequence)."""
    state = np.random.SeedSequence([seed, position]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _check_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    order = randomizable_layers(model)
    if layers is None:
        return order
    if isinstance(layers, str):
        raise ValueError(f"layers must be a list of layer names, e.g. [{layers!r}], not a string")
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ValueError(f"cannot randomize {unknown}: not modules with parameters of their own; choose from {order}")
    return list(layers)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def randomize_layers(model: nn.Module, layers: Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of the model with every parameter tensor of `layers` redrawn from N(0, s²), s = that tensor's own
    standard deviation (module docstring); the other layers, the buffers (e.g. BatchNorm statistics), the training
    flags and requires_grad are copied as they are. The model itself is not changed."""
    seed = _check_seed(seed)
    order = randomizable_layers(model)
    layers = _check_layers(model, layers)
    randomized = copy.deepcopy(model)
    with torch.no_grad():
        for name in layers:
            generator = _generator(seed, order.index(name))
            for parameter in randomized.get_submodule(name).parameters(recurse=False):
                scale = parameter.std(correction=0) if parameter.numel() > 1 else parameter.new_zeros(())
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.copy_((noise * scale.double().cpu()).to(parameter.dtype))
    return randomized


def cascading_randomization(
    model: nn.Module, seed: int = 0, layers: Sequence[str] | None = None
) -> Iterator[tuple[str, nn.Module]]:
    """(layer, copy) for each layer from the top down: the copy has that layer and every layer above it randomized
    (Adebayo et al., NeurIPS 2018, section 3, "cascading randomization"); the last copy has every layer randomized.
    layers: the order to randomize in, default `randomizable_layers(model)` (top first). A generator: each copy is
    made when asked for."""
    seed = _check_seed(seed)
    layers = _check_layers(model, layers)
    for step, name in enumerate(layers):
        yield name, randomize_layers(model, layers[: step + 1], seed)


def independent_randomization(
    model: nn.Module, seed: int = 0, layers: Sequence[str] | None = None
) -> Iterator[tuple[str, nn.Module]]:
    """(layer, copy) for each layer: the copy has that layer alone randomized, the others trained (Adebayo et al.,
    NeurIPS 2018, section 3, "independent randomization"). Same values as the cascade's for the same seed."""
    seed = _check_seed(seed)
    layers = _check_layers(model, layers)
    for name in layers:
        yield name, randomize_layers(model, [name], seed)


def comparable_maps(maps: torch.Tensor) -> torch.Tensor:
    """|map| / max |map| per image, one value per pixel: (B, H, W), or (B, C, H, W) reduced by the largest absolute
    value over the channels (as gradient saliency does); a blank map stays 0. What SSIM compares: maps in [0, 1]."""
    magnitude = maps.abs() if maps.ndim == 3 else maps.abs().amax(dim=1)
    top = magnitude.flatten(1).amax(dim=1)[:, None, None]
    return torch.where(top > 0, magnitude / torch.where(top > 0, top, 1.0), 0.0)


@dataclass(frozen=True)
class Similarity:
    """How alike each method's maps are on the trained and on the randomized models, per step and image."""

    steps: tuple[str, ...]  # what each step randomized: a layer name, or the name given to a model passed in
    methods: tuple[str, ...]  # the methods that ran
    spearman: torch.Tensor  # (methods, steps, B) rank correlation of the raw maps
    spearman_abs: torch.Tensor  # (methods, steps, B) rank correlation of their absolute values
    ssim: torch.Tensor  # (methods, steps, B) SSIM of `comparable_maps` (11 × 11 window, smaller for smaller maps)
    skipped: dict[str, str]  # method -> why it could not run on the trained model


def _maps(model: nn.Module, images: torch.Tensor, layer: Layer | None, method: str, targets: torch.Tensor,
          options: dict) -> torch.Tensor:
    return explain(model, images, layer, method=method, target=targets, normalize=False, **options.get(method, {}))


def randomization_similarity(
    model: nn.Module,
    images: torch.Tensor,
    methods: Sequence[str],
    layer: Layer | None = None,
    target: Target = None,
    randomized: Iterator[tuple[str, nn.Module]] | Sequence[tuple[str, nn.Module]] | None = None,
    seed: int = 0,
    options: dict | None = None,
    maps: dict[str, torch.Tensor] | None = None,
) -> Similarity:
    """Each method's map on `model` against its map on each randomized model, for the same images and classes:
    Spearman's ρ of the raw maps and of their absolute values, and SSIM of `comparable_maps` (Adebayo et al.,
    NeurIPS 2018, section 3). Near 1: the map survived the randomization, so it cannot be explaining the weights.

    randomized: (name, model) pairs, default `cascading_randomization(model, seed)`; pass
    `independent_randomization(model, seed)`, or [("shuffled labels", load_model("gap_shuffled"))] for the data
    randomization test. target: as for `tinycam.capture`, resolved once on the trained model (None: its predicted
    classes), so every model explains the same class. Maps come from `tinycam.explain(..., normalize=False)`;
    options: {method: its extra options}, e.g. {"occlusion": {"patch": 8}}. maps: {method: its map on `model`}, raw
    as `explain(..., normalize=False)` gives them, when the caller has them already (they are not recomputed).
    A method that raises ValueError on the trained model (e.g. CAM on a network without global average pooling) is
    skipped, with the reason in `skipped`.
    On a randomized model a map may go blank (every ReLU after the layer dead, gradients zero): it is then all
    zeros, which is what that model explains, and the warning about it is silenced."""
    check_images(model, images)
    options = options or {}
    targets = capture(model, images, None, target, gradients=False).targets
    originals: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    for method in methods:
        if maps is not None and method in maps:
            originals[method] = maps[method]
            continue
        try:
            originals[method] = _maps(model, images, layer, method, targets, options)
        except ValueError as error:
            skipped[method] = str(error)
    pairs = list(cascading_randomization(model, seed) if randomized is None else randomized)
    measures: dict[str, list] = {"spearman": [], "spearman_abs": [], "ssim": []}
    for method, original in originals.items():
        per_step: dict[str, list] = {key: [] for key in measures}
        for _, other in pairs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "the gradient is zero everywhere for image(s) ..."
                try:
                    after = _maps(other, images, layer, method, targets, options)
                except ValueError as error:
                    if "zero everywhere" not in str(error):
                        raise
                    after = torch.zeros_like(original)  # every map of the batch is blank
            per_step["spearman"].append(metrics.spearman(original, after))
            per_step["spearman_abs"].append(metrics.spearman(original, after, absolute=True))
            window = min(11, *original.shape[-2:])  # Wang et al.'s 11 × 11, or the whole side of a smaller map
            per_step["ssim"].append(metrics.ssim(comparable_maps(original), comparable_maps(after), window=window))
        for key in measures:
            measures[key].append(torch.stack(per_step[key]) if pairs else torch.empty(0, len(images)))
    empty = torch.empty(0, len(pairs), len(images), dtype=torch.float64)
    stacked = {key: torch.stack(values) if values else empty for key, values in measures.items()}
    return Similarity(steps=tuple(name for name, _ in pairs), methods=tuple(originals), skipped=skipped, **stacked)
