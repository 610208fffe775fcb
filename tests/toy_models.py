"""The small models the tests use, the full-graph baseline they are compared with, and a snapshot of a model's state.

Random CNNs (`small_cnn`) for cross-checks, hand-weighted ones (`linear_model`, `two_relu_model`) whose answers are
worked out on paper, as in Captum's tests.
"""

import torch
from torch import nn

LAST = "0.4"  # the last ReLU of small_cnn's features: (B, 5, 5, 5) for 10 x 10 images


def small_cnn(head="gap", inplace=True, batchnorm=False, dtype=torch.float64, seed=0):
    """conv-(BatchNorm)-ReLU-conv-ReLU, then GAP + linear ("gap") or flatten + two linear layers ("fc", for 10 x 10
    images); 4 classes, in eval mode unless the test says otherwise."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 6, 3, padding=1)]
    layers += [nn.BatchNorm2d(6) if batchnorm else nn.Identity()]
    layers += [nn.ReLU(inplace=inplace), nn.Conv2d(6, 5, 3, padding=1, stride=2), nn.ReLU(inplace=inplace)]
    features = nn.Sequential(*layers)
    if head == "gap":
        classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))
    else:
        classifier = nn.Sequential(nn.Flatten(), nn.Linear(5 * 5 * 5, 16), nn.ReLU(inplace=inplace), nn.Linear(16, 4))
    return nn.Sequential(features, classifier).to(dtype).eval()


def images(batch=4, dtype=torch.float64, seed=1, size=10):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def linear_model(weights, activation="score"):
    """S_c = Σ_ij w_c,ij · I_ij, no bias, for weights (classes, C, H, W): every attribution has a closed form."""
    classes, channels, height, width = weights.shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, classes, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(weights.reshape(classes, -1))
    model.output_activation = activation
    return model.eval()


def two_relu_model(inplace=False):
    """x (1, 1, 1, 2) -> identity linear -> ReLU -> [1, -1] -> score: guided backprop drops the negative path."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.ReLU(inplace=inplace), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
    return model.double().eval()


def swap_relus(model, make):
    """Replace every nn.ReLU of the model by `make()` (the tests' independent implementations); returns the model."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, child_name, make())
    return model


def full_graph_gradients(model, x, layer_name, targets):
    """The plain way: record the whole graph, keep the layer's output, differentiate the picked scores."""
    kept = []
    handle = dict(model.named_modules())[layer_name].register_forward_hook(lambda m, i, o: kept.append(o))
    try:
        scores = model(x.clone().requires_grad_(True))
    finally:
        handle.remove()
    picked = scores.gather(1, torch.as_tensor(targets)[:, None]).sum()
    return kept[0], torch.autograd.grad(picked, kept[0])[0], scores


def input_gradients(model, x, targets):
    """∂S_c/∂I by plain autograd on the whole model, one class per image."""
    leaf = x.clone().requires_grad_(True)
    picked = model(leaf).gather(1, torch.as_tensor(targets).expand(len(x))[:, None]).sum()
    return torch.autograd.grad(picked, leaf)[0]


def model_state(model):
    """Everything a library call must leave as it found it: modules (identity, type, in-place flag), training
    flags, hooks, requires_grad and .grad of every parameter, and every buffer's and parameter's value."""
    return (
        [(name, id(m), type(m), getattr(m, "inplace", None), m.training) for name, m in model.named_modules()],
        [(name, dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks))
         for name, m in model.named_modules()],
        [(name, p.requires_grad, p.grad) for name, p in model.named_parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
    )


def assert_same_state(before, after):
    assert before[0] == after[0], "modules or training flags changed"
    assert before[1] == after[1], "hooks changed"
    assert before[2] == after[2], "requires_grad or .grad changed"
    assert before[3].keys() == after[3].keys() and all(torch.equal(before[3][k], after[3][k]) for k in before[3])
