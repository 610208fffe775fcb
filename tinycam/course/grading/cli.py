"""`python -m tinycam grade NOTEBOOK... [--json] [--csv FILE] [--timeout SECONDS] [--jobs N]`: grade notebooks.

A wrong answer is a score, not a failure: the exit status is 0 when every notebook could be graded, 1 when a file is
missing or is not a notebook (the others are still graded and reported), 2 for a usage error.
"""

import argparse
import io
import sys
from pathlib import Path

from tinycam.course.grading.loop import DEFAULT_TIMEOUT, grade
from tinycam.course.grading.report import format_json, format_report, write_csv


def main(argv=None):
    """Grade the notebooks named in `argv` and print the report; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tinycam grade",
        description="Execute each notebook in a fresh kernel and grade its exercises on hidden cases: points per "
                    "exercise, as a text report, JSON (--json) or CSV (--csv). Exit status 0 when every notebook "
                    "could be graded, 1 when one is missing or unreadable.")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebook files (.ipynb) to grade")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the text report")
    parser.add_argument("--csv", metavar="FILE", type=Path,
                        help="also write one row per notebook and exercise to FILE")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per-cell time limit, for the notebook's cells and for each hidden case "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")

    results = grade(args.notebooks, args.timeout, args.jobs)
    if args.json:
        print(format_json(results))
    else:
        print(format_report(results), end="")
    if args.csv:
        buffer = io.StringIO()
        write_csv(results, buffer)
        args.csv.write_text(buffer.getvalue(), encoding="utf-8")
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"grade: {r.notebook}: could not be graded: {r.error}", file=sys.stderr)
    return 1 if failed else 0
