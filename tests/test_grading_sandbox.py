"""Hostile submissions, graded through the public API, with bubblewrap (where it runs) and without it.

Guarantees: with bubblewrap, nothing outside the kernel's private folder can be written, the grader cannot be seen
or signalled, and the kernel's PID namespace dies with it. Without it, the kernel still works in a private folder (a
relative write lands there), in its own session (its stray processes are killed), under resource limits and a time
budget; as root it runs as nobody when nobody can run this Python, else it could write what the grader can.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tinycam.course import grading
from tinycam.course.grading import judging, kernel, loop, sandbox

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinycam"
STEM = "01_gradcam_by_hand"  # a course notebook's name: it is run and graded (its answers missing)
MODES = ["bwrap", "no-bwrap"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    monkeypatch.setenv(sandbox.NO_BWRAP_VARIABLE, "1" if request.param == "no-bwrap" else "0")
    sandbox.bwrap_problem.cache_clear()
    if request.param == "bwrap" and sandbox.bwrap_problem():
        if os.environ.get("CI"):  # .ci/run installs bubblewrap: there, the sandboxed path must be tested
            pytest.fail(f"CI must test the sandboxed path, but {sandbox.bwrap_problem()}")
        pytest.skip(sandbox.bwrap_problem())
    yield request.param
    sandbox.bwrap_problem.cache_clear()


def _notebook(folder, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = folder / f"{STEM}.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _graded(result):
    assert result.error is None, result.error
    assert [e.name for e in result.exercises] == [e.name for e in grading.exercises_of(STEM)]
    assert all(not e.passed and "not defined" in e.message for e in result.exercises), result.exercises


def test_writes_outside_the_private_folder(tmp_path, mode):
    classmate = _notebook(tmp_path / "bob", "x = 1")
    before = classmate.read_bytes()
    target = PACKAGE / "tinycam_sandbox_probe.py"
    path = _notebook(tmp_path / "alice",
                     "open('next_to_me.txt', 'w').write('x')",  # relative: the private folder, in both modes
                     f"open({str(tmp_path / 'alice' / 'beside.txt')!r}, 'w').write('x')",
                     f"open({str(target)!r}, 'w').write('x')",
                     f"open({str(classmate)!r}, 'w').write('overwritten')",
                     "import os\nprint(os.getcwd(), os.environ['HOME'])")
    try:
        result = grading.grade_notebook(path, timeout=5)
        _graded(result)
        assert not (tmp_path / "alice" / "next_to_me.txt").exists()  # it went to the private folder
        if mode == "bwrap" or sandbox.drops_privileges():  # read-only file system, or nobody's permissions
            assert sorted(p.name for p in (tmp_path / "alice").iterdir()) == [path.name]
            assert not target.exists() and classmate.read_bytes() == before
            # the three absolute writes raised (cells are named by their first line)
            assert any(note.startswith("cells that raised: ") and note.count("the cell starting `open(") == 3
                       for note in result.notes), result.notes
    finally:
        target.unlink(missing_ok=True)


def test_killing_the_grader_costs_only_the_notebook(tmp_path, mode):
    if mode == "no-bwrap" and not sandbox.drops_privileges():
        pytest.skip("without bubblewrap, a kernel running as the grader's user can signal it")
    kill = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    hostile = _notebook(tmp_path / "eve", kill)  # from the kernel that runs the notebook
    judged = _exercise_notebook(tmp_path / "mallory", [kill])  # from the process that judges the answers
    fine = _notebook(tmp_path / "bob", "x = 1")
    results = grading.grade([str(hostile), str(judged), str(fine)], timeout=5)
    for result in results:
        _graded(result)


def test_a_detached_process_is_gone_after_grading(tmp_path, mode):
    flag = tmp_path / "written_later.txt"
    path = _notebook(tmp_path / "eve", "import subprocess, sys\n"
                                       "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3); "
                                       f"open({str(flag)!r}, \"w\").write(\"x\")'], start_new_session=True)\n"
                                       f"open({str(tmp_path / 'pid')!r}, 'w').write(str(p.pid))")
    _graded(grading.grade_notebook(path, timeout=5))
    time.sleep(4)
    assert not flag.exists()
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _has_flag(p, flag)]


def _has_flag(pid, flag):
    try:
        return str(flag).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_many_slow_cells_are_stopped_by_the_budget(tmp_path, mode, monkeypatch):
    monkeypatch.setattr(loop, "BUDGET_SLACK", 3.0)  # 3 x 1 s + 3 s
    path = _notebook(tmp_path / "eve", *["import time\ntime.sleep(0.9)"] * 20)
    start = time.monotonic()
    result = grading.grade_notebook(path, timeout=1)
    assert time.monotonic() - start < 6 + 8, "the budget did not stop it"
    assert any(note.startswith("stopped at the notebook's time budget of 6 s") for note in result.notes), result.notes
    assert result.score == 0 and len(result.exercises) == len(grading.exercises_of(STEM))


def test_a_huge_print_is_cut_and_the_notebook_graded(tmp_path, mode):
    import resource

    path = _notebook(tmp_path / "eve", "print('x' * 50_000_000)", "for _ in range(100):\n    print('y' * 500_000)")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nb = nbformat.read(path, as_version=4)
    result = grading.grade_notebook(path, timeout=10)
    _graded(result)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # MiB
    assert grown < 40, f"the grader grew by {grown:.0f} MiB"
    with sandbox.Sandbox(path, 60) as box, kernel.Kernel(nb, box, 10) as k:
        k.run_cell(0)
        k.run_cell(1)
    kept = sum(len(o.get("text", "")) for cell in nb.cells for o in cell.outputs)
    assert kept <= kernel.OUTPUT_PER_CELL * 2


def test_memory_and_process_hogs_are_limited(tmp_path, mode, monkeypatch):
    import tempfile

    made, mkdtemp = [], tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(mkdtemp(*a, **k)) or made[-1])
    path = _notebook(tmp_path / "eve", "hog = bytearray(8 << 30)",
                     "import subprocess\nkids = []\nfor _ in range(400):\n"
                     "    kids.append(subprocess.Popen(['sleep', '30']))",
                     "big = open('big', 'wb')\nbig.write(b'x' * (300 << 20))")
    result = grading.grade_notebook(path, timeout=20)
    _graded(result)
    raised = " ".join(result.notes)
    assert "`hog = bytearray(8 << 30)` (MemoryError)" in raised, result.notes
    assert "`big = open('big', 'wb')` (OSError)" in raised, result.notes  # file size
    # RLIMIT_NPROC does not hold for root's own processes; a pids cgroup does
    if sandbox.drops_privileges() or os.geteuid() != 0 or sandbox.pids_cgroup_root():
        assert "`import subprocess` (BlockingIOError)" in raised or "`import subprocess` (OSError)" in raised, \
            result.notes
    assert made and not [folder for folder in made if os.path.exists(folder)]  # private folders removed


def test_the_grader_says_once_what_a_submission_can_reach(monkeypatch):
    monkeypatch.setenv(sandbox.NO_BWRAP_VARIABLE, "1")
    sandbox.bwrap_problem.cache_clear()
    try:
        run = subprocess.run([sys.executable, "-c", "from tinycam.course.grading import sandbox; sandbox.warn_once();"
                              "sandbox.warn_once()"], capture_output=True, text=True, check=True)
    finally:
        sandbox.bwrap_problem.cache_clear()
    assert run.stderr.count("submissions are not sandboxed") == 1, run.stderr


# ---------------------------------------------------------------------------------------------------------------
# answers judged without the course: a fresh process that cannot import, read or patch it


def _exercise_notebook(folder, answers, *extra):
    """A copy of notebook 01 made of `extra` cells and one exercise cell per answer source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in extra]
    for source in answers:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["exercise"]
        nb.cells.append(cell)
    path = folder / f"{STEM}.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_the_course_cannot_be_reached_from_an_answer(tmp_path, mode):
    classmate = _notebook(tmp_path / "bob", "def gradcam_map(weights, acts):\n    return 'the right answer'")
    reference = PACKAGE / "reference.py"
    path = _exercise_notebook(tmp_path / "eve", [
        # the 37/37 cell: the course's reference imported and called
        "from tinycam import reference\nimport numpy as np\n\ndef gradcam_weights(grads):\n"
        "    return reference.gradcam_weights(grads)",
        # the same, found again at call time through the import machinery and the checkout on the import path
        f"def gradcam_map(weights, acts):\n    import importlib, sys\n    sys.path.insert(0, {str(ROOT)!r})\n"
        "    return importlib.import_module('tinycam.reference').localization_map(weights, acts)",
        # the reference's file read and executed
        f"def counterfactual_weights(grads):\n    namespace = {{}}\n    exec(open({str(reference)!r}).read(), "
        "namespace)\n    return namespace['counterfactual_weights'](grads)",
        # a classmate's answer read from the batch's folder
        f"def classmates(weights, acts):\n    return open({str(classmate)!r}).read()",
    ], "import sys, types\n"  # the grader's runner pre-registered, as in the kernel the answers used to run in
       "fake = types.ModuleType('runner')\nfake.run = lambda *a, **k: None\n"
       "sys.modules.setdefault('tinycam.course.grading.runner', fake)")
    result = grading.grade([str(path), str(classmate)], timeout=20)[0]
    by_name = {e.name: e for e in result.exercises}
    assert not by_name["gradcam_weights"].passed and "name 'reference' is not defined" in \
        by_name["gradcam_weights"].message, by_name["gradcam_weights"].message
    assert not by_name["gradcam_map"].passed and "ModuleNotFoundError" in by_name["gradcam_map"].message
    if mode == "bwrap":  # the package's files are not in the process's file system
        assert not by_name["counterfactual_weights"].passed
        assert "FileNotFoundError" in by_name["counterfactual_weights"].message
        with sandbox.Sandbox(None, 60, [*judging.course_folders(), str(classmate.parent)]) as box:
            probe = f"import os; print(os.path.exists({str(reference)!r}), os.path.exists({str(classmate)!r}))"
            run = subprocess.run(box.wrap([sys.executable, "-I", "-S", "-c", probe]), capture_output=True, text=True,
                                 **{k: v for k, v in box.popen_kwargs().items() if k not in ("stdout", "stderr")})
            assert run.stdout.split() == ["False", "False"], run.stderr
    else:  # without bubblewrap a file this user may read can be read: documented, and flagged
        assert any("exec" in f.reason for f in result.flags if f.exercise == "counterfactual_weights"), result.flags
    assert result.score == (0 if mode == "bwrap" else 1)


def test_links_planted_where_the_grader_reads_change_nothing(tmp_path, mode):
    import numpy as np

    path = _exercise_notebook(tmp_path / "eve", [
        "import os\nimport numpy as np\n\nfor name in ['progress', 'gradcam_weights.0.json', 'gradcam_map.0.json']:\n"
        "    os.symlink('/dev/zero', name)\n\ndef gradcam_weights(grads):\n    return np.mean(grads, axis=(-2, -1))",
    ])
    result = grading.grade_notebook(path, timeout=20)
    assert [(e.name, e.passed) for e in result.exercises][:2] == [("gradcam_weights", True), ("gradcam_map", False)]
    assert np.isfinite(result.seconds) and result.seconds < 60


def test_no_network_under_bubblewrap(tmp_path, mode):
    import socket

    if mode != "bwrap":
        pytest.skip("without bubblewrap the network is not isolated (documented)")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        call = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\nexcept OSError:\n    pass"
        grading.grade_notebook(_exercise_notebook(tmp_path / "eve", [call], call), timeout=20)  # kernel, judge
        with pytest.raises(TimeoutError):
            server.accept()


def test_filling_the_disk_is_stopped_by_the_folder_quota(tmp_path, mode, monkeypatch):
    monkeypatch.setattr(sandbox, "FOLDER_QUOTA", 20 << 20)  # 20 MiB instead of 1 GiB: the same code, a cheap test
    fill = ("import time\nfor i in range(400):\n    with open(f'fill{i}', 'wb') as f:\n        f.write(b'x' * (1 << 20))\n"
            "    time.sleep(0.01)\nfinished = True")
    path = _exercise_notebook(tmp_path / "eve", [f"def gradcam_weights(grads):\n    return 0\n\n{fill}"], fill)
    start = time.monotonic()
    result = grading.grade_notebook(path, timeout=30)
    assert time.monotonic() - start < 30, "the quota did not stop the writes"
    assert any(note.startswith("the notebook wrote more than 20 MiB in its folder") for note in result.notes)
    assert any(note.startswith("the answers wrote more than 20 MiB in their folder") for note in result.notes)


def test_a_huge_result_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(judging, "RESULT_SIZE", 1 << 20)  # 1 MiB instead of 32: the same code, a cheap test
    path = _exercise_notebook(tmp_path / "eve", [
        "import numpy as np\n\ndef gradcam_weights(grads):\n    return [np.zeros(100_000) for _ in range(4)]",
        "import numpy as np\n\ndef gradcam_map(weights, acts):\n    return np.zeros(10_000_000)"])  # past MAX_NUMBERS
    result = grading.grade_notebook(path, timeout=20)
    weights, relu_map = result.exercises[:2]
    assert not weights.passed and "could not be read back (not a plain JSON file of at most 1 MiB)" in weights.message
    assert not relu_map.passed and "too large to grade" in relu_map.message, relu_map.message
