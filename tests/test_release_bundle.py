"""The student bundle: what an instructor hands out holds the student notebooks and what runs them, nothing more."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinycam.course import checks, release

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "tinycam-course"
    release.bundle(ROOT / "notebooks" / "student", ROOT, out, log=lambda line: None)
    return out


def test_the_bundle_holds_the_student_notebooks_and_the_package_only(bundle):
    top = sorted(path.name for path in bundle.iterdir())
    assert top == ["README.md", "data", "notebooks", "pyproject.toml", "requirements.txt", "tinycam"]
    notebooks = sorted(path.name for path in (bundle / "notebooks").iterdir())
    assert notebooks == sorted(path.name for path in (ROOT / "notebooks" / "student").glob("*.ipynb"))
    for path in (bundle / "notebooks").iterdir():
        nb = json.loads(path.read_text(encoding="utf-8"))
        sources = ["".join(cell["source"]) for cell in nb["cells"]]
        assert not any(re.search(r"^\s*#+\s*BEGIN\s+SOLUTION\s*$", source, re.M | re.I) for source in sources)
        assert "student_copy_of" in nb["metadata"]["tinycam"]
    stray = [p for p in bundle.rglob("*") if p.suffix == ".py" and not p.is_relative_to(bundle / "tinycam")
             and p != bundle / "data" / "__init__.py"]
    assert stray == []  # no jupytext twins, no tests
    assert not list(bundle.rglob("__pycache__")) and (bundle / "data" / "gap_model.pt").is_file()


def test_the_bundle_installs_and_runs_outside_the_checkout(bundle, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(bundle)], check=True, capture_output=True)
    script = ("import tinycam\nfrom tinycam.course import checks\ntinycam.load_model('fc')\n"
              "print(tinycam.__file__, len(checks.EXERCISES))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    where, count = result.stdout.split()
    assert Path(where).is_relative_to(target) and int(count) == len(checks.EXERCISES)  # every notebook's


def test_a_bundle_never_overwrites(tmp_path, capsys):
    (tmp_path / "handout").mkdir()
    (tmp_path / "handout" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        release.main(["--out", str(tmp_path / "copies"), "--bundle", str(tmp_path / "handout")])
    assert exit_info.value.code == 2 and "not empty" in capsys.readouterr().err
    assert (tmp_path / "handout" / "keep.txt").read_text() == "mine" and not (tmp_path / "copies").exists()
    with pytest.raises(release.ReleaseError, match="no student copies"):
        release.bundle(tmp_path / "empty", ROOT, tmp_path / "new")
