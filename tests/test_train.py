"""Tests of `python -m tinycam train` (`tinycam.train`): where it writes, what it refuses to overwrite, and how far its
results move between torch's CPU kernels (the reproducibility bound stated in README.md and data/README.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tinycam.models import MODELS, load_model, weights_path
from tinycam.train import DEFAULT_OUT, main

ROOT = Path(__file__).resolve().parents[1]
# torch's plainest CPU code paths: no vectorized ATen kernels, oneDNN limited to SSE4.1, one thread
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "DNNL_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "1"}
# a small configuration (10 steps per model) that runs in a few seconds; its accuracies are far from the shipped
# models', but they show how far the kernels alone move a training run
SMALL = ["--n-train", "320", "--n-test", "300", "--epochs", "1"]
KERNEL_TOLERANCE = 0.02  # measured on a 2-core AVX2 CPU: 0.0011 (FcNet's per-label accuracy); see data/README.md


def test_default_folder_is_not_the_shipped_data():
    assert DEFAULT_OUT == Path("trained")
    assert not DEFAULT_OUT.is_absolute()


def test_refuses_to_overwrite_weights_without_replace(tmp_path, capsys):
    (tmp_path / "gap_model.pt").write_bytes(b"not to be lost")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), *SMALL])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "gap_model.pt already exists" in message and "--replace" in message
    assert (tmp_path / "gap_model.pt").read_bytes() == b"not to be lost"  # refused before training, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gap_model.pt"]


def test_load_model_reads_another_folder(tmp_path):
    flat = torch.nn.utils.parameters_to_vector
    for name, cls in MODELS.items():
        torch.manual_seed(1)
        retrained = cls()
        torch.save(retrained.state_dict(), weights_path(name, tmp_path))
        loaded = load_model(name, folder=tmp_path)
        assert not loaded.training
        assert torch.equal(flat(loaded.parameters()), flat(retrained.parameters()))
        assert not torch.equal(flat(loaded.parameters()), flat(load_model(name).parameters()))  # not the shipped ones


def _train(out, extra_env, threads):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    result = subprocess.run([sys.executable, "-m", "tinycam", "train", "--out", str(out), "--threads", str(threads),
                             *SMALL], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "models.json").read_text())


def test_accuracies_agree_across_cpu_kernels_within_the_stated_tolerance(tmp_path):
    default = _train(tmp_path / "default", {}, threads=os.cpu_count() or 1)
    portable = _train(tmp_path / "portable", PORTABLE_KERNELS, threads=1)
    for name in MODELS:
        for key in ("label_accuracy", "exact_match"):
            assert abs(default[name][key] - portable[name][key]) <= KERNEL_TOLERANCE, (name, key, default, portable)


@pytest.mark.parametrize("argv, message", [(["--epochs", "0"], "--epochs must be at least 1"),
                                           (["--n-train", "31"], "at least one batch (32 images)"),
                                           (["--n-test", "0"], "--n-test must be at least 1"),
                                           (["--threads", "0"], "--threads must be at least 1")])
def test_bad_arguments_are_one_line_each(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_shuffle_labels_trains_gapnet_alone_into_its_own_entry(tmp_path):
    (tmp_path / "models.json").write_text(json.dumps({"gap": {"label_accuracy": 0.5}}))  # another model's entry
    assert main(["--out", str(tmp_path), "--shuffle-labels", "--threads", "1", *SMALL]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gap_shuffled_model.pt", "models.json"]
    record = json.loads((tmp_path / "models.json").read_text())
    assert record["gap"] == {"label_accuracy": 0.5}  # kept
    entry = record["gap_shuffled"]
    assert entry["shuffled_labels"] is True and entry["permutation_seed"] == 0 and entry["n_train"] == 320
    model = load_model("gap_shuffled", folder=tmp_path)
    assert type(model).__name__ == "GapNet" and not model.training
    # a second run needs --replace, for the weights and for the entry
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--shuffle-labels", *SMALL])
    (tmp_path / "gap_shuffled_model.pt").unlink()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--shuffle-labels", *SMALL])


def test_shuffled_labels_are_a_seeded_permutation_of_the_labels(monkeypatch, tmp_path):
    seen = []
    import tinycam.train as train_module

    def record(model, images, labels, *args, **kwargs):
        seen.append(labels.copy())
        return model.eval()

    monkeypatch.setattr(train_module, "train_model", record)
    for out in ("a", "b"):
        main(["--out", str(tmp_path / out), "--shuffle-labels", "--threads", "1", *SMALL])
    main(["--out", str(tmp_path / "c"), "--shuffle-labels", "--seed", "1", "--threads", "1", *SMALL])
    from tinycam.shapes import make_images

    labels = make_images(320, 0).labels
    assert (seen[0] == seen[1]).all() and not (seen[0] == labels).all()
    # the same label vectors, moved among the images: the rows are a permutation of the original rows
    assert sorted(map(tuple, seen[0].tolist())) == sorted(map(tuple, labels.tolist()))
    assert not (seen[2] == make_images(320, 1).labels).all()
