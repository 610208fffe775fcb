"""The grades as a text report, CSV rows or JSON."""

import csv
import json


def format_report(results):
    """The text report: per notebook, a line per exercise (✓/✗, points, why it failed), notes and the total."""
    lines = []
    for result in results:
        lines.append(str(result.notebook))
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
        total = f"{result.score}/{result.max_score}"
        lines.append(f"  {'total':<{width + 2}}  {total:>5}  ({result.seconds:.1f} s)")
        lines.append("")
    return "\n".join(lines)


def write_csv(results, file):
    """One row per notebook and exercise (one row for a notebook that could not be graded and names none)."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(["notebook", "exercise", "points", "max_points", "passed", "message"])
    for result in results:
        if result.error and not result.exercises:
            writer.writerow([result.notebook, "", 0, 0, "false", f"could not be graded: {result.error}"])
        for e in result.exercises:
            writer.writerow([result.notebook, e.name, e.points, e.max_points, "true" if e.passed else "false",
                             e.message])


def format_json(results):
    """A JSON list with one object per notebook (`NotebookResult.as_dict`)."""
    return json.dumps([r.as_dict() for r in results], indent=1, ensure_ascii=False)
