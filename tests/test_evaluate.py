"""`python -m tinycam evaluate` on a tiny setting: the file's structure, every method of METHODS in it, and numbers
that are reproducible and agree with tinycam's functions called directly."""

import pytest

import tinycam
from tinycam import faithfulness, metrics
from tinycam.__main__ import COMMANDS
from tinycam.course import evaluate
from tinycam.explaining import METHODS

N, SEED, STEPS = 3, 5, 4


@pytest.fixture(scope="module")
def small(one_thread):
    return evaluate.run_evaluation(N, SEED, STEPS)


def test_every_method_has_a_row_or_a_reason(small):
    assert [r.method for r in small.rows] + list(small.skipped) == [m for m in METHODS]
    assert not small.skipped  # every method of the course runs on the GAP model
    for r in small.rows:
        assert 0 <= r.deletion_auc <= 1 and 0 <= r.insertion_auc <= 1, r
        assert all(0 <= v <= 100 for v in (r.pointing_game, r.energy, r.instance_mass)), r
        assert all(-1 <= v <= 1 for v in (*r.cascade, *r.shuffled)), r


def test_numbers_agree_with_the_library_called_directly(small):
    model = tinycam.load_model("gap")
    images, instances, object_classes, targets = evaluate.evaluation_images(N, SEED, model)
    maps = tinycam.explain(model, images, model.last_conv, method="gradcam", target=targets)
    row = small.row("gradcam")
    deletion = faithfulness.deletion_curve(model, images, maps, targets, steps=STEPS)
    assert row.deletion_auc == pytest.approx(deletion.auc.double().mean().item(), abs=1e-6)
    union = (instances & (object_classes == targets[:, None])[:, :, None, None]).any(dim=1)
    assert row.energy == pytest.approx(100 * metrics.energy_pointing_game(maps, union).double().mean().item(), abs=1e-4)
    # each target is a class present in its image
    assert all(bool((object_classes[i] == targets[i]).any()) for i in range(N))


def test_command_writes_a_reproducible_file(small, tmp_path, capsys):
    assert COMMANDS["evaluate"][0] == "tinycam.course.evaluate"
    out = tmp_path / "evaluation.md"
    assert evaluate.main(["--n", str(N), "--seed", str(SEED), "--steps", str(STEPS), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    assert text == small.markdown()  # a second run from the same seed: the same file, digit for digit
    assert f"`python -m tinycam evaluate --n {N} --seed {SEED} --steps {STEPS}`" in text
    main_table, cascade_table = small.table().splitlines(), small.cascade_table().splitlines()
    assert small.table() in text and small.cascade_table() in text
    assert len([line for line in text.splitlines() if line.startswith("|")]) == 4 + 2 * len(METHODS)
    assert len(main_table) == len(cascade_table) == 2 + len(METHODS)
    assert all(line.count(" | ") == 11 for line in main_table[2:])  # 12 cells: the method and 11 numbers
    # one column per layer of the cascade, top first; each cell "ρ / SSIM"
    assert small.layers == ("classifier", "features.9", "features.7", "features.4", "features.1")
    assert all(line.count(" / ") == 5 for line in cascade_table[2:])
    assert all(r.cascade_steps[-1] == r.cascade[1:] for r in small.rows)  # the last step is the randomized model
    assert "## What these numbers cannot tell" in text and "ROAD" in text and "Rong et al., ICML 2022" in text


def test_a_method_that_cannot_run_is_skipped_with_its_reason(monkeypatch, one_thread):
    monkeypatch.setattr(evaluate, "METHODS", ["gradcam", "no-such-method"])
    result = evaluate.run_evaluation(2, SEED, 2)
    assert [r.method for r in result.rows] == ["gradcam"]
    assert "unknown method 'no-such-method'" in result.skipped["no-such-method"]
    assert "**Skipped** `no-such-method`" in result.markdown()


@pytest.mark.parametrize("argv, message", [(["--n", "0"], "--n must be at least 1"),
                                           (["--steps", "0"], "--steps must be from 1 to 4096"),
                                           (["--out", "/no/such/folder/evaluation.md"], "does not exist")])
def test_bad_arguments_are_one_line_each(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
