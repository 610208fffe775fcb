"""The grades as a text report, CSV rows or JSON; a file written whole or not at all (`write_atomically`).

Every output carries each notebook's notes (what happened while it ran: "the kernel died in the cell starting ...")
and flags (pointers for the instructor, see `flags`): the text report as `note:` and `flag:` lines, JSON as `notes`
(strings) and `flags` ([{"exercise", "reason"}]) per notebook, CSV as a `notes` column (the notebook's notes joined
by " | ", on each of its rows) and a `flags` column (the row's exercise's flags, and those of cells outside any
exercise, joined by " | ").
"""

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path

CSV_FIELDS = ["notebook", "exercise", "points", "max_points", "passed", "message", "notes", "flags"]
SEPARATOR = " | "  # between the notes, or the flags, of one CSV cell


def format_notebook(result):
    """One notebook's block of the text report: a line per exercise (✓/✗, points, why it failed), its notes, its
    flags and its total, then a blank line."""
    lines = [str(result.notebook)]
    if result.error:
        lines.append(f"  could not be graded: {result.error}")
    width = max([len(e.name) for e in result.exercises] + [5])
    for e in result.exercises:
        score = f"{e.points}/{e.max_points}"
        head = f"  {'✓' if e.passed else '✗'} {e.name:<{width}}  {score:>5}  "
        message = "" if e.passed or result.error else e.message
        first, *rest = message.split("\n")
        lines.append((head + first).rstrip())
        lines.extend(" " * len(head) + line for line in rest)
    lines.extend(f"  note: {note}" for note in result.notes)
    lines.extend(f"  flag: {flag.reason}" for flag in result.flags)
    total = f"{result.score}/{result.max_score}"
    lines.append(f"  {'total':<{width + 2}}  {total:>5}  ({result.seconds:.1f} s)")
    return "\n".join(lines) + "\n\n"


def format_summary(results):
    """The closing summary of several notebooks: a line per notebook (score, path, flags) and the counts."""
    if len(results) < 2:
        return ""
    width = max(len(f"{r.score}/{r.max_score}") for r in results)
    lines = ["summary"]
    for r in results:
        marks = ("  could not be graded" if r.error else "") + (f"  ({len(r.flags)} flag{'s' * (len(r.flags) > 1)})" if r.flags else "")
        lines.append(f"  {f'{r.score}/{r.max_score}':>{width}}  {r.notebook}{marks}")
    failed, flagged = sum(bool(r.error) for r in results), sum(bool(r.flags) for r in results)
    lines.append(f"  {len(results)} notebooks, {failed} could not be graded, {flagged} flagged")
    return "\n".join(lines) + "\n"


def format_report(results):
    """The text report: each notebook's block (`format_notebook`), then the summary when there are several."""
    return "".join(format_notebook(r) for r in results) + format_summary(results)


def write_csv(results, file):
    """One row per notebook and exercise (one row for a notebook that could not be graded and names none)."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for result in results:
        notes = SEPARATOR.join(result.notes)
        names = {e.name for e in result.exercises}

        def flags(name, result=result, names=names):
            return SEPARATOR.join(f.reason for f in result.flags if f.exercise == name or f.exercise not in names)

        if result.error and not result.exercises:
            writer.writerow([result.notebook, "", 0, 0, "false", f"could not be graded: {result.error}", notes,
                             flags("")])
        for e in result.exercises:
            writer.writerow([result.notebook, e.name, e.points, e.max_points, "true" if e.passed else "false",
                             e.message, notes, flags(e.name)])


def write_csv_file(results, path):
    """`write_csv` into the file `path`, atomically (`write_atomically`)."""
    with write_atomically(path) as file:
        write_csv(results, file)


@contextlib.contextmanager
def write_atomically(path):
    """A text file to write `path` through: a temporary file in the same folder, renamed over `path` when the block
    ends without an error, removed when it raises. Readers see the old file or the new one, never half of one."""
    path = Path(path)
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def format_json(results):
    """A JSON list with one object per notebook (`NotebookResult.as_dict`)."""
    return json.dumps([r.as_dict() for r in results], indent=1, ensure_ascii=False)
