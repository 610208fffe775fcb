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
