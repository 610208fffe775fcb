"""`python -m tinycam grade NOTEBOOK... [--json] [--csv FILE] [--answers FILE] [--timeout SECONDS] [--jobs N]
[--progress]`.

A wrong answer is a score, not a failure: the exit status is 0 when every notebook could be graded, 1 when a file is
missing or is not a notebook (the others are still graded and reported) or the CSV could not be written, 2 for a
usage error. Every argument is checked before any notebook runs: a usage error costs no grading and loses nothing.
The text report prints each notebook as soon as it is graded, then a summary; the CSV is written once every notebook
is graded, whole or not at all.
"""

import argparse
import math
import os
import sys
from pathlib import Path

from tinycam.course.grading.loop import DEFAULT_TIMEOUT, grade
from tinycam.course.grading.report import format_json, format_notebook, format_summary, write_atomically, write_csv_file
from tinycam.course.grading.written import format_answers


def _check(parser, args):
    """Stop with one line (exit 2) on an argument that would make the run fail or lose its results."""
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    for notebook in args.notebooks:
        path = Path(notebook)
        if path.suffix.lower() == ".py":
            twin = path.with_suffix(".ipynb")
            if twin.is_file():
                parser.error(f"{notebook} is the jupytext twin of a notebook; grade {twin}")
            parser.error(f"{notebook} is a Python file, not a notebook; grade the .ipynb notebook")
    for option, path, example in [("--csv", args.csv, "grades.csv"), ("--answers", args.answers, "answers.md")]:
        if path is None:
            continue
        folder = path.parent
        if path.is_dir():
            parser.error(f"{option} {path} is a folder; name a file, e.g. {path / example}")
        if not folder.is_dir():
            parser.error(f"{option} {path}: there is no folder {folder}")
        if not os.access(folder, os.W_OK | os.X_OK):
            parser.error(f"{option} {path}: the folder {folder} is not writable")
        if any(path.resolve() == Path(notebook).resolve() for notebook in args.notebooks):
            parser.error(f"{option} {path} is one of the notebooks to grade")
    if args.csv is not None and args.answers is not None and args.csv.resolve() == args.answers.resolve():
        parser.error(f"--csv and --answers name the same file {args.csv}")


def main(argv=None):
    """Grade the notebooks named in `argv` and print the report; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tinycam grade",
        description="Execute each notebook in a fresh kernel and grade its exercises on hidden cases: points per "
                    "exercise, as a text report, JSON (--json) or CSV (--csv), with the run's notes and the flags "
                    "for the instructor. Exit status 0 when every notebook could be graded, 1 when one is missing "
                    "or unreadable, 2 for a usage error.")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebook files (.ipynb) to grade")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the text report")
    parser.add_argument("--csv", metavar="FILE", type=Path,
                        help="also write one row per notebook and exercise to FILE (replaced whole, at the end)")
    parser.add_argument("--answers", metavar="FILE", type=Path,
                        help="also write the written answers (markdown cells tagged `answer`) of every notebook to "
                             "FILE, as Markdown, for grading by hand (replaced whole, at the end)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per-cell time limit, for the notebook's cells and for each hidden case "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    parser.add_argument("--progress", action="store_true",
                        help="show a progress bar on stderr even when it is not a terminal (several notebooks)")
    args = parser.parse_args(argv)
    _check(parser, args)

    from tqdm import tqdm

    shown = len(args.notebooks) > 1 and (args.progress or sys.stderr.isatty())
    bar = tqdm(total=len(args.notebooks), desc="grading", unit="notebook", file=sys.stderr, disable=not shown)

    def done(result):
        if not args.json:
            bar.write(format_notebook(result), file=sys.stdout, end="")
        bar.update()

    with bar:
        results = grade(args.notebooks, args.timeout, args.jobs, on_done=done)
    if args.json:
        print(format_json(results))
    else:
        print(format_summary(results), end="")
    status = 0
    if args.csv:
        try:
            write_csv_file(results, args.csv)
        except OSError as error:
            print(f"grade: could not write {args.csv} ({error}); the grades are in the report above", file=sys.stderr)
            status = 1
    if args.answers:
        try:
            with write_atomically(args.answers) as file:
                file.write(format_answers(results))
        except OSError as error:
            print(f"grade: could not write {args.answers} ({error}); the answers are in the notebooks", file=sys.stderr)
            status = 1
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"grade: {r.notebook}: could not be graded: {r.error}", file=sys.stderr)
    return 1 if failed else status
