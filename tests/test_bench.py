"""The benchmark runs and compares like with like (timings are printed by `python -m tinycam bench`, never asserted)."""

import torch

import tinycam
from tinycam.course import bench


def test_bench_runs_and_tinycam_saves_far_less_for_backward():
    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=5).eval()
    images = torch.rand(1, 3, 32, 32)
    lines = []
    figures = bench.run(model, images, "layer4", repeats=1, out=lines.append)  # also asserts both maps agree
    assert [line.split()[0] for line in lines[1:4]] == ["inference", "tinycam", "full"]
    assert figures["inference"]["saved_bytes"] == 0
    # the graph tinycam records starts at layer4; the full graph holds every activation of the network
    assert 0 < figures["tinycam"]["saved_bytes"] * 20 < figures["full graph"]["saved_bytes"]
    assert all(p.grad is not None for p in model.parameters())  # the full-graph baseline did fill .grad


def test_full_graph_baseline_is_a_real_gradcam():
    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=5).eval()
    images = torch.rand(2, 3, 32, 32)

    torch.testing.assert_close(bench.full_graph_gradcam(model, images, "layer4", 1),
                               tinycam.explain(model, images, "layer4", "gradcam", target=1), rtol=1e-4, atol=1e-4)


def test_run_methods_times_every_method():
    from tinycam.explaining import METHODS

    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=3).eval()
    lines = []
    figures = bench.run_methods(model, torch.rand(1, 3, 32, 32), "layer4", repeats=1, out=lines.append)
    assert set(figures) == {"inference", *METHODS}  # ResNet18 ends in avgpool + fc: CAM applies
    assert [line.split()[0] for line in lines[1:]] == ["inference", *METHODS]


# ---------------------------------------------------------------------------------------------------------------
# `bench --peers`: tinycam against pytorch-grad-cam, Captum and TorchCAM (optional: requirements-bench.txt), whichever
# are installed

import importlib.util  # noqa: E402
import math  # noqa: E402

import pytest  # noqa: E402


def _peers_table(monkeypatch=None, no_peers=False, methods=bench.PEER_METHODS):
    if no_peers:
        monkeypatch.setattr(bench, "installed_peers", lambda: ({}, dict(bench.LEFT_OUT)))
    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=5).eval()
    lines = []
    rows = bench.run_peers(model, torch.rand(1, 3, 64, 64), "layer4", repeats=1, out=lines.append, progress=False,
                           methods=methods)
    return rows, lines


@pytest.fixture(scope="module")
def peers_table():
    return _peers_table()


def test_peers_table_has_a_row_per_method_and_installed_peer(peers_table):
    rows, lines = peers_table
    found, _ = bench.installed_peers()
    has = {"captum": {"gradcam", "saliency", "guided-backprop", "guided-gradcam", "occlusion"},
           "torchcam": {"gradcam", "gradcam++"},
           "pytorch-grad-cam": {"gradcam", "gradcam++", "guided-backprop", "guided-gradcam"}}
    expected = [("inference", "")]
    for method in bench.PEER_METHODS:
        expected += [(method, "tinycam")] + [(method, lib) for lib in bench.PEERS if lib in found and method in has[lib]]
    assert [(row["method"], row["library"]) for row in rows] == expected
    table = [line.split()[:2] for line in lines if line.split()[0] in {"inference", *bench.PEER_METHODS}
             and not line.startswith(" ")]  # the table's rows, not the notes below it
    assert table == [[method, library or "-"] for method, library in expected]
    base = rows[0]
    for row in rows:
        for ratio in (row["x_inference"], row["seconds"] / base["seconds"], row["peak_bytes"] / base["peak_bytes"]):
            assert math.isfinite(ratio) and ratio > 0, row
    # every peer row has its difference and its one-line explanation
    for row in rows[1:]:
        if row["library"] != "tinycam":
            assert 0 <= row["max_diff"] <= 1
            assert any(line.startswith(f"  {row['method']} / {row['library']}: ") for line in lines)
    for library in bench.PEERS:  # each peer is measured, or a line says why not
        assert (library in found) != any(line.startswith(f"not measured: {library}: ") for line in lines)


def _diff(rows, method, library):
    return next(row["max_diff"] for row in rows if (row["method"], row["library"]) == (method, library))


def test_captum_agrees_with_tinycam_where_the_equations_are_the_same(peers_table):
    pytest.importorskip("captum")
    rows, _ = peers_table
    for method in ("gradcam", "saliency", "guided-backprop", "occlusion"):
        assert _diff(rows, method, "captum") < 1e-5, method  # same equation, same (bilinear) upsampling


def test_torchcam_gradcam_agrees_and_its_gradcampp_alpha_bug_shows(peers_table):
    pytest.importorskip("torchcam")
    from torchcam.methods import GradCAMpp

    from tinycam import torch_reference as T

    rows, _ = peers_table
    assert _diff(rows, "gradcam", "torchcam") < 1e-5
    assert _diff(rows, "gradcam++", "torchcam") > 1e-3
    # the note's explanation, checked: TorchCAM's Grad-CAM++ is the map of the weights Σ g²·ReLU(g) (α never divided),
    # min-max normalized with its +1e-8 (visible here: those weights are tiny)
    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=5).eval()
    images = torch.rand(2, 3, 64, 64)
    acts, grads, _, targets = tinycam.capture(model, images, "layer4")
    assert grads is not None
    undivided = T.localization_map((grads.square() * grads.relu()).sum(dim=(-2, -1)), acts)
    low = undivided.flatten(1).amin(1)[:, None, None]
    undivided = (undivided - low) / ((undivided - low).flatten(1).amax(1)[:, None, None] + 1e-8)
    with GradCAMpp(model, "layer4") as extractor:
        (theirs,) = extractor(class_idx=targets.tolist(), scores=model(images))
    torch.testing.assert_close(theirs, undivided, rtol=0, atol=1e-5)
    assert (theirs - T.normalize(T.gradcampp(acts, grads))).abs().max() > 1e-3  # and not Grad-CAM++'s map


def _pytorch_grad_cam():
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        pytest.skip("pytorch-grad-cam is not installed (requirements-bench.txt)")
    return bench.import_pytorch_grad_cam()


def test_pytorch_grad_cam_agrees_where_the_equations_are_the_same(peers_table):
    _pytorch_grad_cam()
    rows, lines = peers_table
    # Grad-CAM: normalized at the layer's size (+1e-7), cv2.resize bilinear, normalized again: float rounding
    assert _diff(rows, "gradcam", "pytorch-grad-cam") < 1e-5
    assert _diff(rows, "guided-backprop", "pytorch-grad-cam") < 1e-5  # the same guided ReLU rule
    assert _diff(rows, "gradcam++", "pytorch-grad-cam") > 1e-3  # its α's +1e-6 shows with these tiny gradients
    stand_in = any(line == f"  note: {bench.PYTORCH_GRAD_CAM_WITH_STAND_IN}" for line in lines)
    assert stand_in == bench.pytorch_grad_cam_stand_in


def test_pytorch_grad_cam_differences_are_the_ones_its_notes_give():
    _pytorch_grad_cam()
    from tinycam import torch_reference as T

    torch.manual_seed(0)
    model = bench.ResNet18(n_classes=5).eval()
    images = torch.rand(2, 3, 64, 64)
    acts, grads, _, targets = tinycam.capture(model, images, "layer4")
    assert grads is not None
    rows = bench.peer_maps("pytorch-grad-cam", model, images, "layer4", targets, 16)
    ours = {method: tinycam.explain(model, images, "layer4", method, target=targets) for method in rows}
    theirs = {method: run() for method, run in rows.items()}

    # Grad-CAM: the same map; the +1e-7 and cv2's bilinear resize leave float rounding
    torch.testing.assert_close(bench.normalized(theirs["gradcam"]), bench.normalized(ours["gradcam"]),
                               rtol=0, atol=1e-5)
    # Grad-CAM++: tinycam's α with pytorch-grad-cam's +1e-6 in the denominator gives its map; without it, not
    g, a = grads.double(), acts.double()
    denominator = 2 * g.square() + a.sum(dim=(-2, -1), keepdim=True) * g.pow(3) + 1e-6
    weights = (g.square() / denominator * g.relu()).sum(dim=(-2, -1))
    with_epsilon = T.normalize(T.upsample(T.normalize(T.localization_map(weights, a)), (64, 64)))
    torch.testing.assert_close(bench.normalized(theirs["gradcam++"]), with_epsilon, rtol=0, atol=1e-5)
    assert (bench.normalized(theirs["gradcam++"]) - bench.normalized(ours["gradcam++"])).abs().max() > 1e-3
    # Guided Grad-CAM: guided backprop × the min-max normalized map (its README's composition), where tinycam
    # multiplies by the raw map: the same once the map's minimum is subtracted
    raw = T.upsample(T.gradcam(acts, grads), (64, 64))
    assert raw.flatten(1).amin(1).max() > 0  # a random-weight map nowhere 0 (the second image): the subtraction shows
    composed = theirs["guided-backprop"] * T.normalize(raw)[:, None]
    torch.testing.assert_close(bench.normalized(theirs["guided-gradcam"]), bench.normalized(composed),
                               rtol=0, atol=1e-5)
    assert (bench.normalized(theirs["guided-gradcam"]) - bench.normalized(ours["guided-gradcam"])).abs().max() > 1e-3
    # its guided backprop ran on a copy: the model's in-place ReLUs are untouched
    assert all(m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))


def test_the_torchvision_stand_in_is_only_there_while_pytorch_grad_cam_imports():
    _pytorch_grad_cam()
    import sys

    if not bench.pytorch_grad_cam_stand_in:
        pytest.skip("torchvision imports here: pytorch-grad-cam uses the real one")
    assert not any(name == "torchvision" or name.startswith("torchvision.") for name in sys.modules)
    from pytorch_grad_cam.utils import image, model_targets

    for stand_in in (image.ToTensor, image.Normalize, image.Compose):
        with pytest.raises(RuntimeError, match="stand-in"):
            stand_in()
    with pytest.raises(RuntimeError, match="stand-in"):
        model_targets.torchvision.ops.box_iou  # noqa: B018 - the attribute access itself raises


def test_without_peers_the_table_is_tinycam_alone_with_the_install_hint(monkeypatch):
    rows, lines = _peers_table(monkeypatch, no_peers=True, methods=["gradcam", "occlusion"])
    assert [(row["method"], row["library"]) for row in rows] == [
        ("inference", ""), ("gradcam", "tinycam"), ("occlusion", "tinycam")]
    assert lines[-1] == f"no peer library is installed; to measure tinycam against them: {bench.INSTALL_HINT}"
    assert not any("why the maps differ" in line for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "nonsense"], "--device"),
    (["--batch", "0"], "--batch must be a positive number of images, got 0"),
    (["--batch", "-2"], "--batch must be a positive number of images, got -2"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--size", "32"], "--size 32 is too small for resnet18: its layer4 maps would be 1x1"),
    (["--size", "0", "--peers"], "--size must be a positive image side"),
    (["--batch", "1", "0"], "--batch must be a positive number of images, got 0"),
    (["--only", "gradcam"], "--only chooses the methods of --peers; add --peers"),
])
def test_bench_arguments_are_checked_first_one_line_each(capsys, argv, message):
    assert bench.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err and "Traceback" not in captured.err


def test_summary_by_batch_gives_each_library_its_ratio_at_each_batch_size():
    def table(ours, theirs):
        return [{"method": "inference", "library": "", "x_inference": 1.0},
                {"method": "gradcam", "library": "tinycam", "x_inference": ours},
                {"method": "gradcam", "library": "captum", "x_inference": theirs}]

    tables = {("resnet18", 1): table(1.05, 1.2), ("resnet18", 8): table(1.03, 1.6)}
    lines = []
    bench.summary_by_batch(tables, ["gradcam"], out=lines.append)
    assert lines[1].split() == ["model", "method", "library", "batch", "1", "batch", "8"]
    assert [line.split() for line in lines[2:]] == [["resnet18", "gradcam", "tinycam", "1.05", "1.03"],
                                                     ["resnet18", "gradcam", "captum", "1.20", "1.60"]]


def test_bench_peers_over_several_batch_sizes_ends_with_the_summary(monkeypatch, capsys):
    monkeypatch.setattr(bench, "installed_peers", lambda: ({}, dict(bench.LEFT_OUT)))
    assert bench.main(["--peers", "--model", "gap", "--batch", "1", "2", "--only", "gradcam", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[:2] for line in lines if line.startswith("gap, batch")] == [["gap", " batch 1 of 64x64"],
                                                                                       ["gap", " batch 2 of 64x64"]]
    assert lines[-3].startswith("time x inference by batch size (gradcam;")
    assert lines[-1].split()[:3] == ["gap", "gradcam", "tinycam"] and len(lines[-1].split()) == 5
    assert not any(line.startswith("gradcam++") for line in lines)  # --only left it out
