"""The multi-instance study: its table has the promised structure, and its numbers are reproduced here from scratch
with tinycam.explain and tinycam.metrics on the same images."""

import math

import numpy as np
import pytest
import torch

import tinycam
from tinycam import metrics, torch_reference
from tinycam.__main__ import COMMANDS
from tinycam.course import study
from tinycam.shapes import make_images

N, SEED = 12, 7


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def small_study(one_thread):
    return study.run_study(N, SEED)


def images_of_class(c, n=N // 3, seed=SEED):
    world = make_images(n, seed + c, classes=(c,), n_objects=3, scale=(0.1, 0.45), spread_sizes=True)
    return torch.from_numpy(world.images), torch.from_numpy(world.masks), world.object_sizes


def test_table_structure(small_study):
    assert [(r.model, r.method) for r in small_study.rows] == [
        ("gap", "cam"), ("gap", "gradcam"), ("gap", "gradcam++"), ("gap", "positive-gradcam"),
        ("fc", "gradcam"), ("fc", "gradcam++"), ("fc", "positive-gradcam"),
    ]
    for row in small_study.rows:
        figures = [row.pointing_game, row.energy_pointing_game, *row.mean_share, *row.mass_coverage,
                   *row.peak_coverage, row.average_drop, row.increase_in_confidence]
        assert len(figures) == 4 + 3 * len(study.SIZE_BUCKETS)
        assert all(0.0 <= f <= 100.0 for f in figures), row
    # three objects per image, one in each size bucket
    assert small_study.instances == (N, N, N)
    small, medium, large = small_study.uniform_share
    assert 0 < small < medium < large < 100
    table = small_study.table().splitlines()
    assert len(table) == 2 + len(small_study.rows) and all(line.count("|") == 16 for line in table)


def test_pointing_game_and_small_peaks_recomputed_directly(small_study):
    model = tinycam.load_model("gap")
    hits, small_peaks = [], []
    for c in range(3):
        images, instances, sizes = images_of_class(c)
        heatmaps = tinycam.explain(model, images, "features.10", method="gradcam", target=c)
        hits += metrics.pointing_game(heatmaps, instances.any(dim=1)).tolist()
        peaks = metrics.instance_peaks(heatmaps, instances)
        small_peaks += peaks[torch.from_numpy((sizes > 0) & (sizes < 10))].tolist()
    row = small_study.row("gap", "gradcam")
    assert row.pointing_game == pytest.approx(100 * np.mean(hits), abs=1e-9)
    assert row.peak_coverage[0] == pytest.approx(100 * np.mean(small_peaks), abs=1e-9)


def test_average_drop_recomputed_directly(small_study):
    model = tinycam.load_model("fc")
    before, after = [], []
    for c in range(3):
        images, _, _ = images_of_class(c)
        heatmaps = tinycam.explain(model, images, "features.11", method="gradcam++", target=c)
        with torch.no_grad():
            before.append(torch.sigmoid(model(images)[:, c].double()))
            after.append(torch.sigmoid(model(images * heatmaps[:, None])[:, c].double()))
    before, after = torch.cat(before), torch.cat(after)
    drop = 100 * ((before - after).clamp(min=0) / before).mean().item()
    row = small_study.row("fc", "gradcam++")
    assert row.average_drop == pytest.approx(drop, rel=1e-9)
    assert row.increase_in_confidence == pytest.approx(100 * (after > before).double().mean().item(), abs=1e-9)


def test_positive_gradcam_is_gradcampp_with_alphas_normalized_on_a_gap_network():
    model = tinycam.load_model("gap").double()
    images, _, _ = images_of_class(0, n=4)
    captured = tinycam.capture(model, images.double(), "features.10", target=0)
    alphas = torch_reference.gradcampp_alphas(captured.acts, captured.grads)
    total = alphas.sum(dim=(-2, -1), keepdim=True)
    # what the paper's code does: α divided by its sum over each map
    normalized = torch.where(total != 0, alphas / total.where(total != 0, torch.ones(())), 0.0)
    weights = (normalized * captured.grads.relu()).sum(dim=(-2, -1))
    torch.testing.assert_close(weights, torch_reference.positive_gradcam_weights(captured.grads), rtol=1e-12, atol=1e-15)


def test_positive_gradcam_by_hand():
    acts = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]]])
    grads = torch.tensor([[[2.0, -2.0], [4.0, 0.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    # map 1: mean of (2, 0, 4, 0) = 1.5; map 2: no positive gradient, weight 0
    torch.testing.assert_close(torch_reference.positive_gradcam_weights(grads), torch.tensor([1.5, 0.0]))
    torch.testing.assert_close(torch_reference.positive_gradcam(acts, grads), 1.5 * acts[0])


def test_command_writes_the_markdown_it_prints(tmp_path, capsys):
    assert COMMANDS["study"][0] == "tinycam.course.study"
    out = tmp_path / "study.md"
    assert study.main(["--n", "6", "--seed", "3", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    assert "`python -m tinycam study --n 6 --seed 3`" in text
    assert study.run_study(6, 3).table() in text


def test_too_few_images_is_refused():
    with pytest.raises(ValueError, match="at least 3"):
        study.study_images(2, 0)
    assert math.isinf(study.SIZE_BUCKETS[-1][2])


@pytest.mark.parametrize("argv, message", [(["--n", "0"], "--n must be at least 3"),
                                           (["--n", "6", "--out", "/no/such/folder/study.md"], "does not exist")])
def test_bad_arguments_are_one_line_each(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        study.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
