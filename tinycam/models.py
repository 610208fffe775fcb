"""Two tiny multi-label CNNs for the shapes world (`tinycam.shapes`), and `load_model` to get them trained.

Both take float32 RGB images in [0, 1] of shape (B, 3, 64, 64) and return (B, 3) logits, one per class of
`tinycam.shapes.CLASSES`; `torch.sigmoid(logits) > 0.5` says which classes are present. Every ReLU is an
`nn.ReLU` module (so it can be swapped out), and every layer has a dotted name: `model.get_submodule("features.7")`.

Names and feature-map sizes for a 64 x 64 input:

    name          GapNet                            FcNet
    features.0    Normalize       3 x 64 x 64       same           (x - mean) / std, so users feed [0, 1] images
    features.1    Conv2d 3x3      8 x 64 x 64       same
    features.2    ReLU                              same
    features.3    MaxPool2d 2     8 x 32 x 32       same
    features.4    Conv2d 3x3     32 x 32 x 32       same
    features.5    ReLU                              same
    features.6    MaxPool2d 2    32 x 16 x 16       same
    features.7    Conv2d 3x3     64 x 16 x 16       same
    features.8    ReLU                              same
    features.9    Conv2d 3x3     64 x 16 x 16       MaxPool2d 2    64 x 8 x 8
    features.10   ReLU  <- last                     Conv2d 3x3     16 x 8 x 8
    features.11                                     ReLU  <- last
    classifier    Linear(64, 3)                     classifier.0 Linear(1024, 32), .1 ReLU, .2 Linear(32, 3)

GapNet:  logits = classifier(features(x).mean over the 16 x 16 positions)    -> CAM applies
FcNet:   logits = classifier(flatten(features(x)))                          -> CAM does not, Grad-CAM does

`model.last_conv` holds the dotted name of the last conv block's ReLU output ("features.10" for GapNet,
"features.11" for FcNet): the usual layer to explain.

The committed weights were trained (`python -m tinycam train`) with a BatchNorm after every conv, which was then
folded into that conv (`fold_batchnorm`): in eval mode this is exact, and the shipped models are plain conv/ReLU/pool.
"""

from pathlib import Path

import torch
from torch import nn

from tinycam import DATA_DIR

N_CLASSES = 3
# per-channel mean and std of the RGB values of the shapes world (measured on 5000 generated images)
IMAGE_MEAN = (0.29, 0.44, 0.23)
IMAGE_STD = (0.18, 0.13, 0.19)


class Normalize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std."""

    def __init__(self, mean=IMAGE_MEAN, std=IMAGE_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


def _conv(c_in, c_out, batchnorm):
    """A 3x3 conv (size-preserving) and its ReLU, with a BatchNorm in between when training."""
    if batchnorm:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]


def _trunk(batchnorm):
    """The layers both models share: 64 x 64 -> 64 channels at 16 x 16."""
    return [
        Normalize(),
        *_conv(3, 8, batchnorm),
        nn.MaxPool2d(2),
        *_conv(8, 32, batchnorm),
        nn.MaxPool2d(2),
        *_conv(32, 64, batchnorm),
    ]


class GapNet(nn.Module):
    """Conv features -> global average pooling -> one linear layer. CAM applies: the score of class c is the average
    over positions (i, j) of `classifier.weight[c] . features(x)[:, :, i, j]`, plus `classifier.bias[c]`."""

    last_conv = "features.10"
    output_activation = "sigmoid"  # multi-label: one independent probability per class

    def __init__(self, batchnorm=False):
        super().__init__()
        self.features = nn.Sequential(*_trunk(batchnorm), *_conv(64, 64, batchnorm))
        self.classifier = nn.Linear(64, N_CLASSES)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class FcNet(nn.Module):
    """Conv features -> flatten -> two fully connected layers. No global pooling: CAM does not apply, Grad-CAM does."""

    last_conv = "features.11"
    output_activation = "sigmoid"  # multi-label: one independent probability per class

    def __init__(self, batchnorm=False):
        super().__init__()
        self.features = nn.Sequential(*_trunk(batchnorm), nn.MaxPool2d(2), *_conv(64, 16, batchnorm))
        self.classifier = nn.Sequential(nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, N_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


MODELS = {"gap": GapNet, "fc": FcNet}
# other shipped weights for the same architectures: name -> architecture. "gap_shuffled" is GapNet trained on the same
# images with their labels randomly permuted (`python -m tinycam train --shuffle-labels`): the data randomization test
# of Adebayo et al. (NeurIPS 2018, "Sanity Checks for Saliency Maps", section 4)
VARIANTS = {"gap_shuffled": "gap"}


def fold_batchnorm(model):
    """A plain copy (no BatchNorm) of a model built with `batchnorm=True`, with each BatchNorm folded into its conv.

    In eval mode BatchNorm is a per-channel affine map y = a * x + b, with a = gamma / sqrt(var + eps) and
    b = beta - a * mean, so conv-then-BatchNorm is one conv with weights scaled by a and bias b.
    """
    plain = type(model)(batchnorm=False)
    layers = list(model.features)
    target = iter(plain.features)
    i = 0
    while i < len(layers):
        layer, out = layers[i], next(target)
        if isinstance(layer, nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d):
            bn = layers[i + 1]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(bn.running_mean)
            with torch.no_grad():
                out.weight.copy_(layer.weight * scale.view(-1, 1, 1, 1))
                out.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
            i += 2
        else:
            out.load_state_dict(layer.state_dict())
            i += 1
    plain.classifier.load_state_dict(model.classifier.state_dict())
    return plain.eval()


def weights_path(name, folder=None):
    """Where the trained weights of model `name` live: `data/<name>_model.pt` unless another folder is given."""
    return (DATA_DIR if folder is None else Path(folder)) / f"{name}_model.pt"


def load_model(name, device="cpu", folder=None):
    """The trained model `name` ("gap", "fc", or "gap_shuffled": GapNet trained on shuffled labels) in eval mode,
    float32: the committed weights of `data/`, or those that `python -m tinycam train --out FOLDER` wrote to
    `folder`."""
    if name not in MODELS and name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted([*MODELS, *VARIANTS]))}")
    model = MODELS[VARIANTS.get(name, name)]()
    model.load_state_dict(torch.load(weights_path(name, folder), map_location="cpu", weights_only=True))
    return model.to(device=device, dtype=torch.float32).eval()
