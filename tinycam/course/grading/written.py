"""Written answers: the markdown cells tagged `answer` ("why does A³ get a small weight?"), collected per student
into one file the instructor reads and grades by hand (as nbgrader's manually graded answers).

An answer cell starts with its question (its first non-empty line); the rest is the student's answer. In the solution
notebook the model answer sits in a solution region, which the student copy replaces with "_Your answer here._"
(`release`): a cell still holding that line is unanswered.
"""

from tinycam.course.release import TEXT_PLACEHOLDER as UNANSWERED

TAG = "answer"


def written_answers(nb):
    """[{"question", "answer"}] of the notebook's answer cells, in order ("" for an unanswered one)."""
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown" or TAG not in (cell.get("metadata", {}).get("tags") or []):
            continue
        lines = str(cell.get("source", "")).strip().split("\n")
        answer = "\n".join(lines[1:]).strip()
        found.append({"question": lines[0].strip(), "answer": "" if answer in ("", UNANSWERED) else answer})
    return found


def format_answers(results):
    """The written answers of every graded notebook, as Markdown: one section per notebook, one per question."""
    parts = ["# Written answers", ""]
    for result in results:
        if not result.answers:
            continue
        parts += [f"## {result.notebook}", ""]
        for item in result.answers:
            text = item["answer"] or "_(no answer)_"
            parts += [f"### {item['question']}", "", *("> " + line if line else ">" for line in text.split("\n")), ""]
    if len(parts) == 2:
        parts += ["No notebook of this run has written answers.", ""]
    return "\n".join(parts)
