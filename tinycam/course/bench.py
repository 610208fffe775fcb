"""`python -m tinycam bench`: what an explanation costs, as ratios to one inference pass measured in the same run.

Three ways to get a Grad-CAM map, on a ResNet-18 built here with random weights (torchvision's layout, nothing
downloaded) or on the course's tiny CNNs:

- inference: `model(x)` under `torch.inference_mode()`, the baseline every ratio divides by;
- tinycam:   `tinycam.explain(...)`, graph recorded from the layer on, `autograd.grad` down to it only;
- full graph: what the public CAM libraries do: record the whole graph with the parameters requiring grad, hook the
  layer's activations and gradients, and call `score.backward()`, which also fills every parameter's `.grad`.

`--peers` measures tinycam against the libraries users pick instead, pytorch-grad-cam, Captum and TorchCAM (pinned
in requirements-bench.txt, optional; pytorch-grad-cam is imported against a stand-in for torchvision where no
torchvision loads, see TORCHVISION_STAND_IN), on a ResNet-18 and a ResNet-50 layout: Grad-CAM, Grad-CAM++,
saliency, guided backprop, Guided Grad-CAM and occlusion where a library has the method, in one interleaved run;
time and peak memory as ratios to inference, and the largest difference of each library's map from tinycam's, with
one line saying why they differ. Without any peer installed it measures tinycam alone, prints how to install them,
and exits 0.

Memory (the default mode) is the bytes autograd saves for the backward pass (the extra memory an explanation holds
beyond inference), counted with `torch.autograd.graph.saved_tensors_hooks`, so it is the same measure on CPU and GPU; on CUDA the peak
allocated memory is printed too.
"""

import argparse
import contextlib
import os
import sys
import time
import warnings
from typing import Any

import torch
from torch import nn

import tinycam
from tinycam import torch_reference


def _projection(c_in, c_out, stride):
    """The shortcut's 1×1 projection when a block changes size or width, else None (the identity)."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3×3 convolutions and the identity (or a 1×1 projection) added."""

    expansion = 1

    def __init__(self, c_in, width, stride):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = _projection(c_in, c_out, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (ResNet v1.5: the stride on the 3×3 convolution): 1×1 down, 3×3, 1×1 up to 4× width."""

    expansion = 4

    def __init__(self, c_in, width, stride):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(c_in, c_out, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout (stem, layer1..layer4, avgpool, fc; the same module names, so a torchvision
    state_dict loads), random weights: nothing is downloaded."""

    def __init__(self, block, blocks, n_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for i, (width, count) in enumerate(zip([64, 128, 256, 512], blocks), 1):
            stride = 1 if i == 1 else 2
            layers = [block(c_in, width, stride)]
            c_in = width * block.expansion
            layers += [block(c_in, width, 1) for _ in range(count - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_classes)
        self.layer1: nn.Sequential
        self.layer2: nn.Sequential
        self.layer3: nn.Sequential
        self.layer4: nn.Sequential

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNet18(ResNet):
    """torchvision's resnet18 layout: layer1..layer4 of two BasicBlocks each, 512 channels into fc."""

    def __init__(self, n_classes=1000):
        super().__init__(BasicBlock, [2, 2, 2, 2], n_classes)


class ResNet50(ResNet):
    """torchvision's resnet50 layout: layer1..layer4 of 3, 4, 6 and 3 Bottlenecks, 2048 channels into fc."""

    def __init__(self, n_classes=1000):
        super().__init__(Bottleneck, [3, 4, 6, 3], n_classes)


def resnet_map_side(size):
    """The side of layer4's feature maps for a size×size input: the stem halves twice, layer2..4 halve once each
    (3×3 or 7×7 kernels, padded: side → (side − 1) // 2 + 1)."""
    for _ in range(5):
        size = (size - 1) // 2 + 1
    return size


def full_graph_gradcam(model, images, layer, target):
    """The public libraries' way, for comparison: whole graph, hooks, `.backward()` into every parameter."""
    kept = {}
    module = dict(model.named_modules())[layer]

    def keep(_module, _inputs, output):
        kept["acts"] = output
        output.register_hook(lambda grad: kept.__setitem__("grads", grad))

    handle = module.register_forward_hook(keep)
    try:
        model.zero_grad(set_to_none=True)
        scores = model(images)
        scores[:, target].sum().backward()
    finally:
        handle.remove()
    raw = torch_reference.gradcam(kept["acts"].detach(), kept["grads"])
    return torch_reference.normalize(torch_reference.upsample(raw, images.shape[-2:]))


def _saved_bytes(fn):
    """Run fn() and return the bytes of the tensors autograd saved for backward while it ran."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def _median(values):
    return sorted(values)[len(values) // 2]


def seconds(fn, repeats=3, sync=lambda: None):
    """The median time of `repeats` calls of `fn` after one warm-up call, in seconds (`sync` waits for a device)."""
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return _median(times)


def run(model, images, layer, repeats=5, out=print):
    """Measure the three ways on one model and batch; print a table and return the figures as a dict."""
    device = images.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def inference():
        with torch.inference_mode():
            model(images)

    ways = {
        "inference": inference,
        "tinycam": lambda: tinycam.explain(model, images, layer, "gradcam", target=0),
        "full graph": lambda: full_graph_gradcam(model, images, layer, target=0),
    }
    torch.testing.assert_close(ways["tinycam"](), ways["full graph"](), rtol=1e-4, atol=1e-4)  # same maps
    figures: dict[str, dict] = {}
    for name, fn in ways.items():
        elapsed = seconds(fn, repeats, sync)
        saved = 0 if name == "inference" else _saved_bytes(fn)
        peak = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            allocated = torch.cuda.memory_allocated()
            fn()
            sync()
            peak = torch.cuda.max_memory_allocated() - allocated
        figures[name] = {"seconds": elapsed, "saved_bytes": saved, "peak_bytes": peak}
    base = figures["inference"]
    peak_columns = f" {'peak MB':>8} {'x inference':>12}" if device.type == "cuda" else ""
    out(f"{'method':<12} {'time':>10} {'x inference':>12} {'graph MB':>9}" + peak_columns)
    for name, f in figures.items():
        line = f"{name:<12} {f['seconds'] * 1e3:8.1f}ms {f['seconds'] / base['seconds']:12.2f} {f['saved_bytes'] / 2**20:9.1f}"
        if f["peak_bytes"] is not None:
            line += f" {f['peak_bytes'] / 2**20:8.1f} {f['peak_bytes'] / max(base['peak_bytes'], 1):12.2f}"
        out(line)
    ours, theirs = figures["tinycam"], figures["full graph"]
    out(f"full graph / tinycam: {theirs['seconds'] / ours['seconds']:.2f}x the time, "
        f"{theirs['saved_bytes'] / max(ours['saved_bytes'], 1):.1f}x the autograd memory")
    return figures


def run_methods(model, images, layer, repeats=3, out=print, occlusion_patch=None):
    """Every `explain` method's time as a ratio to one inference pass, measured in the same run.
    Occlusion uses patches of a quarter of the image side, stride the same (16 positions); Score-CAM runs one forward
    pass per feature map of `layer` and image (its row says how many), the cost to set against Grad-CAM's row."""
    from tinycam.explaining import METHODS

    device = images.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    patch = occlusion_patch or images.shape[-1] // 4

    def inference():
        with torch.inference_mode():
            model(images)

    base = seconds(inference, repeats, sync)
    out(f"{'method':<16} {'time':>10} {'x inference':>12}")
    out(f"{'inference':<16} {base * 1e3:8.1f}ms {1.0:12.2f}")
    figures = {"inference": base}
    n_maps = tinycam.capture(model, images[:1], layer, gradients=False).acts.shape[1]  # Score-CAM's passes per image
    for method in METHODS:
        options = {"occlusion": dict(patch=patch, stride=patch, progress=False),
                   "scorecam": dict(progress=False)}.get(method, {})

        def explain(method=method, options=options):
            return tinycam.explain(model, images, layer, method, target=0, **options)

        try:
            elapsed = seconds(explain, repeats, sync)  # its warm-up call raises first if the method does not apply
        except ValueError:  # a method this model does not support (CAM without GAP + linear): left out
            continue
        figures[method] = elapsed
        note = {"occlusion": f"   ({(images.shape[-1] // patch) ** 2} patch positions)",
                "scorecam": f"   ({n_maps} masked forward passes per image)"}.get(method, "")
        out(f"{method:<16} {elapsed * 1e3:8.1f}ms {elapsed / base:12.2f}{note}")
    return figures


# ---------------------------------------------------------------------------------------------------------------
# `--peers`: tinycam measured against the libraries users pick instead (requirements-bench.txt)

PEERS = {"captum": "captum", "torchcam": "torchcam", "pytorch-grad-cam": "pytorch_grad_cam"}  # library -> import name
DISTRIBUTIONS = {"pytorch-grad-cam": "grad-cam"}  # library -> its name on PyPI, where they differ (for its version)
LEFT_OUT: dict[str, str] = {}  # library -> why it is not measured, for a peer bench knows of but cannot run
INSTALL_HINT = "pip install --no-deps -r requirements-bench.txt"
PEER_METHODS = ["gradcam", "gradcam++", "saliency", "guided-backprop", "guided-gradcam", "occlusion"]

# why a peer's map differs from tinycam's, one line per (method, library); what the Δ column measures is in the header
NOTES = {
    ("gradcam", "captum"): "LayerGradCam + LayerAttribution.interpolate(mode='bilinear'): the same equation; Δ is float rounding",
    ("gradcam", "torchcam"): "the same equation; TorchCAM min-max normalizes at 7×7 before upsampling, with +1e-8 in the "
    "denominator, so re-normalizing after upsampling leaves float rounding",
    ("gradcam++", "torchcam"): "TorchCAM's α division never happens (alpha[mask].div_() divides a copy): its weights are "
    "Σ g²·ReLU(g), not Σ α·ReLU(g), so small that its +1e-8 in the normalization shows too",
    ("saliency", "captum"): "Saliency(abs=True), then the max over colour channels (Simonyan et al.): the same gradient",
    ("guided-backprop", "captum"): "GuidedBackprop: the same guided ReLU rule on every nn.ReLU, reused ReLU modules included",
    ("guided-gradcam", "captum"): "GuidedGradCam(interpolate_mode='bilinear'): guided backprop × the raw upsampled ReLU "
    "Grad-CAM map, as tinycam (Selvaraju et al., section 3.2): the same",
    ("gradcam", "pytorch-grad-cam"): "GradCAM + ClassifierOutputTarget: the same equation, in NumPy float32 (its "
    "loss.backward() also fills every parameter's .grad, in its peak); it min-max normalizes at 7×7 (+1e-7), "
    "upsamples with cv2.resize (bilinear, half-pixel centres like torch's, the same to ~1e-7) and normalizes again: "
    "float rounding",
    ("gradcam++", "pytorch-grad-cam"): "GradCAMPlusPlus adds 1e-6 to α's denominator 2g² + ΣA·g³; with random weights "
    "g² is about that small, so α changes (tinycam's equation with that +1e-6 gives its map to float rounding)",
    ("guided-backprop", "pytorch-grad-cam"): "GuidedBackpropReLUModel: the same guided ReLU rule on every nn.ReLU; it "
    "explains one image per call, so it runs once per image of the batch (on a copy of the model: it swaps the ReLUs)",
    ("guided-gradcam", "pytorch-grad-cam"): "guided backprop × GradCAM's map, composed as its README does: its map is "
    "min-max normalized, so its minimum is subtracted; tinycam multiplies by the raw ReLU map, so they differ where "
    "that map is nowhere 0 (gb × min-max(map) gives its map to float rounding)",
    ("occlusion", "captum"): "Occlusion on the raw score (tinycam with output='score'), a window over all channels, "
    "averaged over the windows covering each pixel: the same",
}


def installed_peers():
    """{library: version} of the peers that import, and {library: why not} of those that don't."""
    import importlib
    import importlib.metadata

    found, missing = {}, dict(LEFT_OUT)
    for library, module in PEERS.items():
        try:
            imported = import_pytorch_grad_cam() if module == "pytorch_grad_cam" else importlib.import_module(module)
            version = getattr(imported, "__version__", None)
            found[library] = version or importlib.metadata.version(DISTRIBUTIONS.get(library, library))
        except Exception as error:  # an ImportError, or a broken install that raises on import
            missing[library] = f"not importable ({type(error).__name__}: {error})".splitlines()[0]
    return found, missing


# pytorch-grad-cam 1.5.7 imports torchvision at import time, for image utilities the bench never calls:
#   pytorch_grad_cam/utils/image.py       from torchvision.transforms import Compose, Normalize, ToTensor
#                                         (used by preprocess_image only)
#   pytorch_grad_cam/sess.py              from torchvision.transforms.functional import resize  (used by SESS only)
#   pytorch_grad_cam/utils/model_targets.py  import torchvision
#                                         (torchvision.ops.box_iou, used by FasterRCNNBoxScoreTarget only)
# GradCAM, GradCAMPlusPlus, GuidedBackpropReLUModel, ClassifierOutputTarget and scale_cam_image (the map's
# normalization and cv2.resize) use none of them. No torchvision on PyPI loads with the CPU torch 2.13.0, so where
# `import torchvision` fails, pytorch_grad_cam is imported against a stand-in holding exactly those names, each
# raising if called; it sits in sys.modules only while pytorch_grad_cam imports, and is removed afterwards.
TORCHVISION_STAND_IN = {
    "torchvision": [],
    "torchvision.transforms": ["Compose", "Normalize", "ToTensor"],
    "torchvision.transforms.functional": ["resize"],
}
PYTORCH_GRAD_CAM_WITH_STAND_IN = ("pytorch-grad-cam ran with bench's stand-in for torchvision (which does not load "
                                  "with this torch): only image utilities the bench never calls use it")
pytorch_grad_cam_stand_in = False  # set by import_pytorch_grad_cam: whether the stand-in was used


def _torchvision_stand_in():
    """{module name: stand-in module} for TORCHVISION_STAND_IN; every name, and any other attribute of the
    modules (torchvision.ops, ...), raises a RuntimeError saying so when used."""
    import types

    def unavailable(qualified):
        def stand_in(*args, **kwargs):
            raise RuntimeError(f"{qualified} is tinycam bench's stand-in: torchvision did not import, so "
                               "pytorch-grad-cam's image utilities that need it do not work here")
        stand_in.__qualname__ = stand_in.__name__ = qualified
        return stand_in

    modules = {}
    for name, names in TORCHVISION_STAND_IN.items():
        module = types.ModuleType(name, "tinycam bench's stand-in for torchvision: pytorch_grad_cam imports these "
                                        "names at import time; calling any of them raises")
        for attribute in names:
            setattr(module, attribute, unavailable(f"{name}.{attribute}"))

        def missing(attribute, name=name):
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            unavailable(f"{name}.{attribute}")()

        module.__getattr__ = missing  # type: ignore[method-assign]
        modules[name] = module
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    return modules


def import_pytorch_grad_cam():
    """`import pytorch_grad_cam`, against the torchvision stand-in (see TORCHVISION_STAND_IN) only where
    `import torchvision` fails; sets `pytorch_grad_cam_stand_in`."""
    global pytorch_grad_cam_stand_in
    import importlib
    import importlib.util

    if sys.modules.get("pytorch_grad_cam") is not None:
        return sys.modules["pytorch_grad_cam"]
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or a build that does not load with this torch (it raises RuntimeError)
        pass
    else:
        pytorch_grad_cam_stand_in = False
        return importlib.import_module("pytorch_grad_cam")
    if importlib.util.find_spec("pytorch_grad_cam") is None:  # not installed: no stand-in is placed
        raise ModuleNotFoundError("No module named 'pytorch_grad_cam'")
    broken = {name: sys.modules.pop(name) for name in list(sys.modules)
              if name == "torchvision" or name.startswith("torchvision.")}  # a partly loaded torchvision
    stand_in = _torchvision_stand_in()
    sys.modules.update(stand_in)
    try:
        module = importlib.import_module("pytorch_grad_cam")
    finally:
        for name, placed in stand_in.items():
            if sys.modules.get(name) is placed:
                del sys.modules[name]
        sys.modules.update(broken)
    pytorch_grad_cam_stand_in = True
    return module


def peer_maps(library, model, images, layer, targets, patch):
    """{method: a function returning that library's map at the input's size} for one library."""
    size = tuple(images.shape[-2:])
    target_list = targets.tolist()
    if library == "captum":
        from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam, Occlusion, Saliency

        module = dict(model.named_modules())[layer]
        per_eval = max(1, 256 // len(images))  # about as many occluded images per forward pass as tinycam's 256

        def gradcam():
            raw = LayerGradCam(model, module).attribute(images, target=target_list, relu_attributions=True)
            return LayerAttribution.interpolate(raw, size, interpolate_mode="bilinear")[:, 0]

        return {
            "gradcam": gradcam,
            "saliency": lambda: Saliency(model).attribute(images, target=target_list, abs=True).amax(dim=1),
            "guided-backprop": lambda: GuidedBackprop(model).attribute(images, target=target_list),
            "guided-gradcam": lambda: GuidedGradCam(model, module).attribute(
                images, target=target_list, interpolate_mode="bilinear"),
            "occlusion": lambda: Occlusion(model).attribute(
                images, sliding_window_shapes=(images.shape[1], patch, patch), strides=(images.shape[1], patch, patch),
                baselines=0.0, target=target_list, perturbations_per_eval=per_eval)[:, 0],
        }
    if library == "torchcam":
        from torchcam.methods import GradCAM, GradCAMpp

        def torchcam_map(extractor_class):
            def run_it():
                with extractor_class(model, layer, input_shape=tuple(images.shape[1:])) as extractor:
                    scores = model(images)
                    (low,) = extractor(class_idx=target_list, scores=scores)
                return torch_reference.upsample(low, size)
            return run_it

        return {"gradcam": torchcam_map(GradCAM), "gradcam++": torchcam_map(GradCAMpp)}
    if library == "pytorch-grad-cam":
        import copy

        pgc = import_pytorch_grad_cam()
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        module = dict(model.named_modules())[layer]
        # GuidedBackpropReLUModel swaps every nn.ReLU for its guided ReLU during the call and back for a new
        # nn.ReLU() (not in place) after it: it gets a copy, so the other rows run the model as built
        guided_model = copy.deepcopy(model)

        def pgc_map(cam_class):
            def run_it():
                with cam_class(model, target_layers=[module]) as cam:
                    maps = cam(images, targets=[ClassifierOutputTarget(t) for t in target_list])
                return torch.from_numpy(maps)  # (B, H, W) float32, on the CPU (it computes in NumPy)
            return run_it

        def guided_backprop():
            # it explains one image per call (output[0, target], input.grad[0]) and returns it (H, W, C)
            gb = pgc.GuidedBackpropReLUModel(guided_model, device=images.device)
            return torch.stack([torch.from_numpy(gb(images[i:i + 1].clone(), target_category=t)).permute(2, 0, 1)
                                for i, t in enumerate(target_list)])

        def guided_gradcam():  # composed as its README does: cam_mask * gb (before deprocess_image, display only)
            return guided_backprop() * pgc_map(pgc.GradCAM)()[:, None]

        # its loss.backward() fills every parameter's .grad and leaves it held; the peak pass starts without any,
        # so each of its rows counts them (the guided copy never clears them: it accumulates into them)
        guided_backprop.clear_grads = lambda: guided_model.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
        guided_gradcam.clear_grads = guided_backprop.clear_grads  # type: ignore[attr-defined]

        return {"gradcam": pgc_map(pgc.GradCAM), "gradcam++": pgc_map(pgc.GradCAMPlusPlus),
                "guided-backprop": guided_backprop, "guided-gradcam": guided_gradcam}
    raise ValueError(f"unknown peer library {library!r}")


def normalized(maps):
    """Min-max per image over all channels and pixels, as `tinycam.explain` does: (B, ...) -> (B, ...) in [0, 1]."""
    flat = maps.detach().reshape(maps.shape[0], 1, -1).to(torch.float64)
    return torch_reference.normalize(flat).reshape(maps.shape)


def _peak_bytes(fn, device):
    """The most bytes torch held at once while fn() ran, beyond what it held before: on CUDA the allocator's peak,
    on the CPU the running sum of the allocations and frees the torch profiler records (profile_memory=True)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    held = peak = 0
    for event in events:
        held += event.nbytes()
        peak = max(peak, held)
    return peak


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines) while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)



def run_peers(model, images, layer, repeats=5, out=print, progress=True, libraries=None, methods=PEER_METHODS):
    """tinycam and every installed peer on the same model, batch and targets, in one interleaved run: each repeat
    times every implementation once, in an order rotated by one each repeat, so a drift in the machine's load hits
    them all alike. Prints the table (tinycam's rows alone, and how to install the peers, when none is installed)
    and returns its rows as dicts: method, library, seconds (the median), x_inference, peak_bytes, and max_diff for a
    peer."""
    with warnings.catch_warnings():  # Captum warns, on every call, that it sets hooks and makes the input require grad
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        return _run_peers(model, images, layer, repeats, out, progress, libraries, methods)


def _run_peers(model, images, layer, repeats, out, progress, libraries, methods):
    device = images.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    found, missing = installed_peers()
    libraries = list(found) if libraries is None else libraries
    patch = max(1, images.shape[-1] // 4)  # occlusion: 4×4 windows of a quarter of the side, stride the same
    with torch.no_grad():
        targets = model(images).argmax(dim=1)  # each image's predicted class, the same for every library

    def inference():
        with torch.inference_mode():
            model(images)

    def ours(method):
        options = dict(patch=patch, stride=patch, progress=False, output="score") if method == "occlusion" else {}
        return lambda: tinycam.explain(model, images, layer, method, target=targets, **options)

    rows: list[dict[str, Any]] = [{"method": "inference", "library": "", "run": inference}]
    for method in methods:
        rows.append({"method": method, "library": "tinycam", "run": ours(method)})
        for library in libraries:
            peer = peer_maps(library, model, images, layer, targets, patch)
            if method in peer:
                rows.append({"method": method, "library": library, "run": peer[method]})

    steps = len(rows) * (repeats + 2)  # a warm-up and a memory pass, then the timed repeats
    bar = _progress(steps, progress)
    reference = {}
    for row in rows:  # warm-up: each map once, compared with tinycam's
        result = row["run"]()
        sync()
        bar.update()
        if row["library"] == "tinycam":
            reference[row["method"]] = normalized(result)
        elif row["library"]:
            ref = reference[row["method"]]
            row["max_diff"] = float((normalized(result).to(ref.device) - ref).abs().max())
    for row in rows:
        model.zero_grad(set_to_none=True)  # a library that fills the parameters' .grad counts them in every row
        getattr(row["run"], "clear_grads", lambda: None)()
        row["peak_bytes"] = _peak_bytes(row["run"], device)
        bar.update()
    times: dict[int, list[float]] = {id(row): [] for row in rows}
    for repeat in range(repeats):
        shift = repeat % len(rows)
        for row in rows[shift:] + rows[:shift]:
            start = time.perf_counter()
            row["run"]()
            sync()
            times[id(row)].append(time.perf_counter() - start)
            bar.update()
    bar.close()
    baseline = times[id(rows[0])]
    for row in rows:
        row["seconds"] = _median(times[id(row)])
        # each repeat's time over the inference time of the same repeat: a slow spell of the machine, which lasts
        # longer than a repeat, divides out
        row["x_inference"] = _median([mine / base for mine, base in zip(times[id(row)], baseline)])
        del row["run"]

    base = rows[0]
    out("time: median of the repeats; x inference: median over the repeats of the time / that repeat's inference pass "
        "(torch.inference_mode)")
    memory = "the CUDA allocator's peak" if device.type == "cuda" else "the peak of torch's CPU allocations (profiler)"
    out(f"peak: the most memory held at once during the call beyond what was held before ({memory}), x inference likewise")
    out("max |Δ|: the largest difference from tinycam's map, both upsampled bilinearly to the input if coarser and "
        "min-max normalized per image")
    width = max(9, *(len(row["library"]) for row in rows))
    out(f"{'method':<16} {'library':<{width}} {'time':>10} {'x inference':>12} {'peak MB':>8} {'x inference':>12} {'max |Δ|':>9}")
    for row in rows:
        diff = f"{row['max_diff']:9.1e}" if "max_diff" in row else f"{'':>9}"
        out(f"{row['method']:<16} {row['library'] or '-':<{width}} {row['seconds'] * 1e3:8.1f}ms "
            f"{row['x_inference']:12.2f} {row['peak_bytes'] / 2**20:8.1f} "
            f"{row['peak_bytes'] / max(base['peak_bytes'], 1):12.2f} {diff}".rstrip())
    peers_shown = [(row["method"], row["library"]) for row in rows if "max_diff" in row]
    if peers_shown:
        out("why the maps differ:")
        for method, library in peers_shown:
            out(f"  {method} / {library}: {NOTES[method, library]}")
        if pytorch_grad_cam_stand_in and any(library == "pytorch-grad-cam" for _, library in peers_shown):
            out(f"  note: {PYTORCH_GRAD_CAM_WITH_STAND_IN}")
    for library, why in missing.items():
        out(f"not measured: {library}: {why}")
    if not found:
        out(f"no peer library is installed; to measure tinycam against them: {INSTALL_HINT}")
    return rows


def _progress(total, enabled):
    """A tqdm bar on stderr (a stand-in with the same two methods when disabled)."""
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="bench", unit="call", file=sys.stderr, leave=False)

    class _Silent:
        def update(self, n=1):
            pass

        def close(self):
            pass

    return _Silent()


def _check_args(args):
    """The first thing wrong with bench's arguments, as one line, or None."""
    for batch in args.batch:
        if batch < 1:
            return f"--batch must be a positive number of images, got {batch}"
    if args.only and not args.peers:
        return "--only chooses the methods of --peers; add --peers (or use --methods to time every method)"
    if args.repeats < 1:
        return f"--repeats must be at least 1 (the median of that many timed calls), got {args.repeats}"
    try:
        device = torch.device(args.device)
    except RuntimeError:
        return f"--device {args.device!r} is not a device torch knows (try cpu or cuda)"
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "was built without CUDA" if torch.version.cuda is None else "finds no CUDA GPU"
        return f"--device {args.device}: this torch ({torch.__version__}) {build}; use --device cpu"
    if device.type not in ("cpu", "cuda"):
        return f"--device {args.device}: bench runs on cpu or cuda"
    if args.size < 1:
        return f"--size must be a positive image side in pixels, got {args.size}"
    for model in args.models:
        if model.startswith("resnet") and resnet_map_side(args.size) < 2:
            smallest = next(side for side in range(1, 100) if resnet_map_side(side) >= 2)
            return (f"--size {args.size} is too small for {model}: its layer4 maps would be "
                    f"{resnet_map_side(args.size)}x{resnet_map_side(args.size)} (a one-pixel map upsamples to a "
                    f"constant); use --size {smallest} or more (224 is ImageNet's)")
    return None


def _model(name, size):
    """(model, layer, image side) for a --model name: the ResNets built here, or the course's tiny CNNs."""
    if name == "resnet18":
        return ResNet18().eval(), "layer4", size
    if name == "resnet50":
        return ResNet50().eval(), "layer4", size
    model = tinycam.load_model(name)
    return model, model.last_conv, 64


def summary_by_batch(tables, methods=("gradcam", "gradcam++"), out=print):
    """One line per (model, method, library): its time as a ratio to inference at each batch size, from the tables
    of `run_peers` keyed by (model, batch); each ratio comes from its own interleaved run."""
    models = list(dict.fromkeys(model for model, _ in tables))
    batches = list(dict.fromkeys(batch for _, batch in tables))
    out(f"time x inference by batch size ({', '.join(methods)}; each column from its own interleaved run)")
    out(f"{'model':<10} {'method':<10} {'library':<17}" + "".join(f"{f'batch {b}':>10}" for b in batches))
    for model in models:
        for method in methods:
            libraries = dict.fromkeys(row["library"] for (m, _), rows in tables.items() if m == model
                                      for row in rows if row["method"] == method)
            for library in libraries:
                cells = []
                for batch in batches:
                    rows = tables.get((model, batch), [])
                    mine = next((row for row in rows if (row["method"], row["library"]) == (method, library)), None)
                    cells.append(f"{mine['x_inference']:10.2f}" if mine else f"{'-':>10}")
                out(f"{model:<10} {method:<10} {library:<17}" + "".join(cells))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinycam bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["resnet18", "resnet50", "gap", "fc"], default=None,
                        help="the network (default resnet18; with --peers resnet18, then resnet50)")
    parser.add_argument("--batch", type=int, nargs="+", default=[8],
                        help="images per call; several sizes run one after the other (e.g. --batch 1 8 32)")
    parser.add_argument("--size", type=int, default=224, help="image side for the ResNets (the tiny CNNs use 64)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", action="store_true", help="time every explain method instead (ratios to inference)")
    parser.add_argument("--peers", action="store_true",
                        help=f"tinycam against pytorch-grad-cam, Captum and TorchCAM, time, memory and maps ({INSTALL_HINT})")
    parser.add_argument("--only", nargs="+", choices=PEER_METHODS, default=None, metavar="METHOD",
                        help=f"with --peers: only these methods (of {', '.join(PEER_METHODS)})")
    args = parser.parse_args(argv)
    default = ["resnet18", "resnet50"] if args.peers else ["resnet18"]
    args.models = [args.model] if args.model else default
    problem = _check_args(args)
    if problem:
        print(f"python -m tinycam bench: error: {problem}", file=sys.stderr)
        return 2
    methods = args.only or PEER_METHODS
    tables = {}
    runs = [(name, batch) for name in args.models for batch in args.batch]
    for name, batch in runs:
        torch.manual_seed(0)
        model, layer, size = _model(name, args.size)
        model = model.to(args.device)
        images = torch.rand(batch, 3, size, size, device=args.device)
        device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        print(f"{name}, batch {batch} of {size}x{size}, layer {layer!r}, on {device}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.repeats}")
        if args.peers:
            tables[name, batch] = run_peers(model, images, layer, args.repeats, methods=methods)
        elif args.methods:
            run_methods(model, images, layer, args.repeats)
        else:
            run(model, images, layer, args.repeats)
        if (name, batch) != runs[-1]:
            print()
    summarized = [method for method in ("gradcam", "gradcam++") if method in methods]
    if args.peers and len(args.batch) > 1 and summarized:
        print()
        summary_by_batch(tables, summarized)
    return 0
