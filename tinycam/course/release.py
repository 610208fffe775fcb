"""`python -m tinycam release [--out DIR] [--source DIR] [--bundle DIR]`: write the student copy of every solution
notebook, and with --bundle the folder an instructor hands out (`bundle`).

A solution notebook (`notebooks/NN_name.ipynb`) holds each answer between a `### BEGIN SOLUTION` line and a
`### END SOLUTION` line. Its student copy (`notebooks/student/NN_name.ipynb` by default)

- replaces each such region by `raise NotImplementedError()` at the indentation of the BEGIN line (in a markdown
  cell: a "_Your answer here._" line);
- clears the outputs and execution counts of the exercise cells (tagged `exercise`, or holding a solution region) and
  of the check cells (tagged `check`), and tags them `raises-exception` and `nbval-ignore-output`: nbval then lets
  them raise (and, their execution count being empty, would not compare their outputs anyway);
- keeps every teaching cell as it is, outputs and figures included;
- drops the jupytext pairing from the notebook's metadata (student copies have no `.py` twin) and records which
  solution notebook it was made from.

The copy is a pure function of the solution notebook's bytes, so releasing twice gives byte-identical files and a
test can tell when the committed copies are stale. Unpaired or nested markers stop the release with an error naming
the notebook and the cell; the solution notebooks are only ever read.
"""

import argparse
import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat

# relative to the working directory: run the release from the course's checkout (the notebooks are not package data)
SOURCE_DIR = Path("notebooks")
STUDENT_DIR = SOURCE_DIR / "student"

# a whole line "### BEGIN SOLUTION" / "### END SOLUTION" (any number of #, any case, any spacing): the marker
_MARKER = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*(?P<which>BEGIN|END)[ \t]+SOLUTION[ \t]*$", re.IGNORECASE)
CODE_PLACEHOLDER = "raise NotImplementedError()"
TEXT_PLACEHOLDER = "_Your answer here._"
EXPECTED_TO_RAISE = ["raises-exception", "nbval-ignore-output"]  # nbval: may raise; outputs not compared


class ReleaseError(ValueError):
    """A solution notebook whose markers cannot be turned into a student copy."""


def _cell_name(notebook, index, cell):
    cell_id = cell.get("id")
    return f"{notebook}, cell {index + 1}" + (f" (id {cell_id})" if cell_id else "")


def strip_solutions(source, where, code=True):
    """(source without its solution regions, number of regions). `where` names the cell in error messages."""
    lines = source.split("\n")
    kept, begin = [], None  # begin: (line number, indentation) of the open region
    regions = 0
    for number, line in enumerate(lines, 1):
        marker = _MARKER.match(line)
        if marker is None:
            if begin is None:
                kept.append(line)
            continue
        if marker["which"].upper() == "BEGIN":
            if begin is not None:
                raise ReleaseError(f"{where}: nested '### BEGIN SOLUTION' on line {number} "
                                   f"(the region opened on line {begin[0]} is not closed)")
            begin = (number, marker["indent"])
        else:
            if begin is None:
                raise ReleaseError(f"{where}: '### END SOLUTION' on line {number} without a '### BEGIN SOLUTION'")
            kept.append(begin[1] + (CODE_PLACEHOLDER if code else TEXT_PLACEHOLDER))
            begin = None
            regions += 1
    if begin is not None:
        raise ReleaseError(f"{where}: '### BEGIN SOLUTION' on line {begin[0]} has no '### END SOLUTION'")
    return "\n".join(kept), regions


def student_notebook(nb, notebook_name):
    """The student copy of a solution notebook (a new NotebookNode; `nb` is left as it is)."""
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        where = _cell_name(notebook_name, index, cell)
        cell.source, regions = strip_solutions(cell.source, where, code=cell.cell_type == "code")
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code" or not (regions or "exercise" in tags or "check" in tags):
            continue
        cell.outputs = []
        cell.execution_count = None
        cell.metadata["tags"] = tags + [tag for tag in EXPECTED_TO_RAISE if tag not in tags]
    student.metadata.pop("jupytext", None)
    student.metadata["tinycam"] = {"student_copy_of": notebook_name}
    return student


def render(nb):
    """The notebook as the exact text written to disk (nbformat's layout, one final newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def solution_notebooks(source_dir=SOURCE_DIR):
    return sorted(Path(source_dir).glob("*.ipynb"))


def release(source_dir=SOURCE_DIR, out_dir=STUDENT_DIR, log=print):
    """Write the student copy of every solution notebook of `source_dir` into `out_dir`; returns the paths.

    Student copies in `out_dir` whose solution notebook no longer exists are removed, and nothing else: only a file
    that records being the copy of a solution notebook of its own name, and only when `source_dir` has notebooks.
    Everything is checked before anything is written, so a marker error leaves `out_dir` as it was.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if out_dir.resolve() == source_dir.resolve():
        raise ReleaseError(f"refusing to write student copies over the solution notebooks in {source_dir}")
    sources = solution_notebooks(source_dir)
    if not sources:
        raise ReleaseError(f"no solution notebooks (*.ipynb) in {source_dir.resolve()}; run the release from the course's "
                           "folder or pass --source DIR")
    copies = {}
    for path in sources:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        copies[path.name] = render(student_notebook(nb, path.name))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in copies.items():
        target = out_dir / name
        data = text.encode("utf-8")
        if target.exists() and target.read_bytes() == data:
            log(f"up to date  {_shown(target)}")
        else:
            target.write_bytes(data)
            log(f"wrote       {_shown(target)}")
        written.append(target)
    for stale in sorted(out_dir.glob("*.ipynb")):
        if stale.name not in copies and _is_student_copy(stale):
            stale.unlink()
            log(f"removed     {_shown(stale)} (its solution notebook is gone)")
    return written


def _shown(path):
    """A path as the user would type it: relative to the working directory when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _is_student_copy(path):
    """A notebook the release wrote: it records being the copy of the solution notebook of its own name."""
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception:  # not a notebook we wrote: leave it alone
        return False
    return nb.metadata.get("tinycam", {}).get("student_copy_of") == path.name


STUDENT_README = """# tinycam: the student edition

The course's notebooks with their exercises open, and the `tinycam` package they run on. Set up once (Python 3.11
or newer, in a fresh virtual environment), then open the course:

```bash
pip install -r requirements.txt && jupyter lab notebooks/
```

In each exercise cell, replace `raise NotImplementedError()` with your answer and run the check cell below it:
`✓` means right on the notebook's example and on random cases, `✗` shows what was expected, what came back and a
hint. Grade your notebook the way it will be graded: `python -m tinycam grade notebooks/NN_name.ipynb`.
"""
# what a student bundle holds besides the student notebooks: the package and what installs it
BUNDLE_FILES = ("pyproject.toml", "requirements.txt")


def bundle(student_dir, root, out_dir, log=print):
    """Write the folder an instructor hands out: `notebooks/` (the student copies of `student_dir`), the package
    `tinycam/` and its `data/`, `pyproject.toml`, `requirements.txt` and a short README.md; without the solution
    notebooks, their jupytext twins or the tests (whose tables hold right answers). `out_dir` must not exist yet
    or be empty: nothing is overwritten."""
    student_dir, root, out_dir = Path(student_dir), Path(root), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ReleaseError(f"the bundle folder {out_dir} already exists and is not empty; choose a new folder")
    copies = sorted(path for path in student_dir.glob("*.ipynb") if _is_student_copy(path))
    if not copies:
        raise ReleaseError(f"no student copies in {student_dir}; run the release first")
    missing = [name for name in ("tinycam", "data", *BUNDLE_FILES) if not (root / name).exists()]
    if missing:
        raise ReleaseError(f"{root} is not the course's folder (no {', '.join(missing)}); run from the checkout")
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    for path in copies:
        shutil.copy2(path, out_dir / "notebooks" / path.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for folder in ("tinycam", "data"):
        shutil.copytree(root / folder, out_dir / folder, ignore=ignore)
    for name in BUNDLE_FILES:
        shutil.copy2(root / name, out_dir / name)
    (out_dir / "README.md").write_text(STUDENT_README, encoding="utf-8")
    log(f"bundle      {_shown(out_dir)} ({len(copies)} notebooks, the package and its data)")
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tinycam release",
        description="Write the student copy of every solution notebook: answers replaced by "
                    "`raise NotImplementedError()`, outputs of exercise and check cells cleared.")
    parser.add_argument("--out", type=Path, default=STUDENT_DIR, metavar="DIR",
                        help=f"folder for the student copies (default: {STUDENT_DIR})")
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, metavar="DIR",
                        help=f"folder of the solution notebooks (default: {SOURCE_DIR})")
    parser.add_argument("--bundle", type=Path, metavar="DIR",
                        help="also write the folder to hand out: the student notebooks, the package, its data and "
                             "how to install them, without solutions or tests (DIR must be new or empty)")
    args = parser.parse_args(argv)
    if args.bundle is not None and args.bundle.exists() and (not args.bundle.is_dir() or any(args.bundle.iterdir())):
        parser.error(f"--bundle {args.bundle}: already exists and is not empty; choose a new folder")
    if not args.source.is_dir():
        parser.error(f"--source {args.source}: " + ("not a folder" if args.source.exists() else "no such folder"))
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: not a folder")
    if args.out.resolve() == args.source.resolve():
        parser.error(f"--out {args.out} is the --source folder: the student copies would replace the solutions")
    try:
        release(args.source, args.out)
        if args.bundle is not None:
            bundle(args.out, args.source.resolve().parent, args.bundle)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    return 0
