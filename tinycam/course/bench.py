"""`python -m tinycam bench`: what an explanation costs, as ratios to one inference pass measured in the same run.

Three ways to get a Grad-CAM map, on a ResNet-18 built here with random weights (torchvision's layout, nothing
downloaded) or on the course's tiny CNNs:

- inference: `model(x)` under `torch.inference_mode()`, the baseline every ratio divides by;
- tinycam:   `tinycam.explain(...)`, graph recorded from the layer on, `autograd.grad` down to it only;
- full graph: what the public CAM libraries do: record the whole graph with the parameters requiring grad, hook the
  layer's activations and gradients, and call `score.backward()`, which also fills every parameter's `.grad`.

Memory is the bytes autograd saves for the backward pass (the extra memory an explanation holds beyond inference),
counted with `torch.autograd.graph.saved_tensors_hooks`, so it is the same measure on CPU and GPU; on CUDA the peak
allocated memory is printed too.
"""

import argparse
import time

import torch
from torch import nn

import tinycam
from tinycam import torch_reference


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout (stem, layer1..layer4 of two BasicBlocks, avgpool, fc), random weights."""

    def __init__(self, n_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [64, 128, 256, 512]
        for i, (c_in, c_out) in enumerate(zip([64] + widths[:-1], widths), 1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_classes)
        self.layer1: nn.Sequential
        self.layer2: nn.Sequential
        self.layer3: nn.Sequential
        self.layer4: nn.Sequential

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


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


def _seconds(fn, repeats, sync):
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]  # the median


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
        seconds = _seconds(fn, repeats, sync)
        saved = 0 if name == "inference" else _saved_bytes(fn)
        peak = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            allocated = torch.cuda.memory_allocated()
            fn()
            sync()
            peak = torch.cuda.max_memory_allocated() - allocated
        figures[name] = {"seconds": seconds, "saved_bytes": saved, "peak_bytes": peak}
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
    Occlusion uses patches of a quarter of the image side, stride the same (16 positions)."""
    from tinycam.explaining import METHODS

    device = images.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    patch = occlusion_patch or images.shape[-1] // 4

    def inference():
        with torch.inference_mode():
            model(images)

    base = _seconds(inference, repeats, sync)
    out(f"{'method':<16} {'time':>10} {'x inference':>12}")
    out(f"{'inference':<16} {base * 1e3:8.1f}ms {1.0:12.2f}")
    figures = {"inference": base}
    for method in METHODS:
        options = dict(patch=patch, stride=patch, progress=False) if method == "occlusion" else {}

        def explain(method=method, options=options):
            return tinycam.explain(model, images, layer, method, target=0, **options)

        try:
            seconds = _seconds(explain, repeats, sync)  # its warm-up call raises first if the method does not apply
        except ValueError:  # a method this model does not support (CAM without GAP + linear): left out
            continue
        figures[method] = seconds
        note = f"   ({(images.shape[-1] // patch) ** 2} patch positions)" if method == "occlusion" else ""
        out(f"{method:<16} {seconds * 1e3:8.1f}ms {seconds / base:12.2f}{note}")
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinycam bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["resnet18", "gap", "fc"], default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="image side for resnet18 (the tiny CNNs use 64)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", action="store_true", help="time every explain method instead (ratios to inference)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.model == "resnet18":
        model, layer, size = ResNet18().eval(), "layer4", args.size
    else:
        model = tinycam.load_model(args.model)
        layer, size = model.last_conv, 64
    model = model.to(args.device)
    images = torch.rand(args.batch, 3, size, size, device=args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{args.model}, batch {args.batch} of {size}x{size}, layer {layer!r}, on {device}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    if args.methods:
        run_methods(model, images, layer, args.repeats)
    else:
        run(model, images, layer, args.repeats)
    return 0
