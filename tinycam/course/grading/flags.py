"""Flags for the instructor, not verdicts: what a submission's cells reach for, and answers nearly identical to the
course's reference or to another submission of the same batch. Read from the notebook's source with `ast`; nothing is
run, and a flag changes no points.

- **reaches for**: an exercise cell that imports or names the course's code (`tinycam`, `checks`), or any code cell
  that reaches for the interpreter's machinery (`sys.modules`, `__import__`, `importlib`, `builtins`, `globals()`,
  `gc.get_objects`, `inspect.stack`, `sys._getframe`, `exec`/`eval`, `os._exit`, a `/proc` path, ...);
- **nearly identical**: an exercise's function whose syntax tree, with names and constants renamed canonically and
  docstrings, comments and annotations dropped, matches the reference function of the same name (`tinycam/reference.py`,
  `tinycam/torch_reference.py`, `tinycam/conv.py`; `NAME_torch` is compared with `NAME`) or another submission's
  answer (reported on both). Answers shorter than MIN_TOKENS are not compared: short right answers look alike.

Also names cells the way a student finds them in JupyterLab (`cell_label`): by their exercise, else by their first line.
"""

import ast
import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

REFERENCE_FILES = ("reference.py", "torch_reference.py", "conv.py")  # in tinycam/
MIN_TOKENS = 40  # answers with fewer syntax-tree tokens are not compared (`return np.mean(grads, axis=(-2, -1))`: 17)
SIMILAR = 0.9  # difflib ratio of the token sequences at or above which two answers are "nearly identical"

_COURSE = {"tinycam", "checks"}  # in an exercise cell: the course's own code
_MACHINERY_NAMES = {"__import__", "__builtins__", "importlib", "builtins", "globals", "exec", "eval", "compile"}
_MACHINERY_MODULES = {"importlib", "builtins", "gc", "inspect", "ctypes"}
_MACHINERY_ATTRIBUTES = {("sys", "modules"), ("sys", "_getframe"), ("gc", "get_objects"), ("gc", "get_referrers"),
                         ("inspect", "stack"), ("inspect", "currentframe"), ("os", "_exit"), ("os", "kill")}
_DUNDERS = {"__globals__", "__builtins__", "__subclasses__", "__code__", "__closure__", "__import__"}


@dataclass(frozen=True)
class Flag:
    """A pointer for a human: the exercise it concerns ('' for a cell of no exercise) and what was seen."""

    exercise: str
    reason: str

    def as_dict(self):
        return {"exercise": self.exercise, "reason": self.reason}


def _tags(cell):
    return cell.get("metadata", {}).get("tags", []) or []


def _parse(source):
    """The cell's syntax tree (IPython `%magic` and `!shell` lines blanked out), or None when it is not Python."""
    for text in (source, "\n".join("" if line.lstrip()[:1] in ("%", "!") else line for line in source.split("\n"))):
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    return None


def exercise_name(cell):
    """The exercise of a cell tagged `exercise` (the function or variable it defines) or `check` (the check it calls,
    `checks.NAME(...)`); None for any other cell."""
    tags = set(_tags(cell))
    if cell.get("cell_type") != "code" or not tags & {"exercise", "check"}:
        return None
    tree = _parse(cell.get("source", ""))
    if tree is None:
        return None
    if "check" in tags:
        return next((node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                     and node.func.value.id == "checks"), None)
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assigned = [node.targets[0].id for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)]
    return (defined + assigned + [None])[0]


def cell_label(nb, index):
    """How a student finds cell `index` (0-based) in JupyterLab: "the exercise cell of `gradcam_map`", "the check
    cell of `gradcam_map`", else "the cell starting `<its first line>`"."""
    cell = nb.cells[index]
    name = exercise_name(cell)
    if name:
        return f"the {'check' if 'check' in _tags(cell) else 'exercise'} cell of `{name}`"
    first = next((line.strip() for line in cell.get("source", "").split("\n") if line.strip()), "")
    if not first:
        return f"the empty cell {index + 1}"
    return f"the cell starting `{first if len(first) <= 50 else first[:49].rstrip() + '…'}`"


# ---------------------------------------------------------------------------------------------------------------
# reaching for the course's code or the interpreter's machinery


def _dotted(node):
    """`a.b.c` as ("a", "b", "c") when the attribute chain starts at a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id, *reversed(parts)) if isinstance(node, ast.Name) else None


def _reaches(tree, course):
    """What the code reaches for: (what, the code), in source order; `course`: the course's code counts too."""
    found = []
    for node in ast.walk(tree):
        what = _reach(node, course)
        if what is not None:
            found.append(((getattr(node, "lineno", 0), getattr(node, "col_offset", 0)), what))
    return [what for _, what in sorted(found, key=lambda item: item[0])]


def _reach(node, course):
    """(what, the code) when `node` itself reaches for the course's code or the interpreter's machinery."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        imported = {name.split(".")[0] for name in modules}
        if isinstance(node, ast.ImportFrom):
            imported |= {alias.name for alias in node.names}
        if course and imported & _COURSE:
            return "the course's code", ast.unparse(node)
        return ("the interpreter's machinery", ast.unparse(node)) if imported & _MACHINERY_MODULES else None
    if isinstance(node, ast.Name) and node.id in _MACHINERY_NAMES:
        return "the interpreter's machinery", node.id
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node)
        if node.attr in _DUNDERS or (dotted is not None and dotted[:2] in _MACHINERY_ATTRIBUTES):
            return "the interpreter's machinery", ast.unparse(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/proc" in node.value:
        return "the interpreter's machinery", repr(node.value)
    if course and isinstance(node, ast.Name) and node.id in _COURSE:
        return "the course's code", node.id
    return None


def _short(code):
    code = " ".join(code.split())
    return code if len(code) <= 60 else code[:59] + "…"


# ---------------------------------------------------------------------------------------------------------------
# nearly identical answers


def _tokens(node, names, constants):
    """The syntax tree as a token list in source order: names and constants renamed by first appearance, attribute
    and keyword names kept; docstrings and other bare strings, annotations and decorators dropped."""
    if isinstance(node, ast.expr_context):
        return
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        yield "def"
        children = [node.args, *node.body]
    elif isinstance(node, ast.arg):
        yield "name" + names.setdefault(node.arg, str(len(names)))
        children = []
    elif isinstance(node, ast.Name):
        yield "name" + names.setdefault(node.id, str(len(names)))
        children = []
    elif isinstance(node, ast.Constant):
        yield "const" + constants.setdefault(repr(node.value), str(len(constants)))
        children = []
    else:
        yield type(node).__name__ + ("." + node.attr if isinstance(node, ast.Attribute) else "") \
            + ("=" + str(node.arg) if isinstance(node, ast.keyword) else "")
        children = [child for field, child in _children(node) if field not in ("annotation", "returns")]
    for child in children:
        yield from _tokens(child, names, constants)


def _children(node):
    for field, value in ast.iter_fields(node):
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield field, child


def answer_tokens(function):
    """The normalized token list of a function definition (see `_tokens`)."""
    return list(_tokens(function, {}, {}))


def nearly_identical(a, b):
    """Two token lists that are long enough to compare and match at SIMILAR or more."""
    if min(len(a), len(b)) < MIN_TOKENS:
        return False
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= SIMILAR and matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


@functools.cache
def reference_answers():
    """{function name: [(file, tokens)]} of the reference implementations (read from source, not imported)."""
    root = Path(__file__).resolve().parents[2]
    answers: dict = {}
    for name in REFERENCE_FILES:
        for node in ast.parse((root / name).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                answers.setdefault(node.name, []).append((f"tinycam/{name}", answer_tokens(node)))
    return answers


# ---------------------------------------------------------------------------------------------------------------
# a notebook, a batch


def _read(path):
    import nbformat

    try:
        nb = nbformat.reads(Path(path).read_bytes().decode("utf-8"), as_version=4)
        return nb if isinstance(nb.get("cells"), list) else None
    except Exception:  # missing or unreadable: the grader reports it; there is nothing to flag
        return None


def notebook_flags(nb):
    """(flags of one notebook, {exercise: answer tokens} of its exercise functions)."""
    flags, answers = [], {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(cell.get("source", ""))
        if tree is None:
            continue
        name = exercise_name(cell) if "exercise" in _tags(cell) else None
        where = f"`{name}`" if name else cell_label(nb, index)
        for what, code in dict.fromkeys(_reaches(tree, course=name is not None)):
            flags.append(Flag(name or "", f"{where} reaches for {what}: `{_short(code)}`"))
        function = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name), None)
        if name is None or function is None:
            continue
        answers[name] = answer_tokens(function)
        for reference in dict.fromkeys([name, name.removesuffix("_torch")]):
            for file, tokens in reference_answers().get(reference, []):
                if nearly_identical(answers[name], tokens):
                    flags.append(Flag(name, f"`{name}` is nearly identical to `{reference}` in {file}"))
    return flags, answers


def flag_notebooks(paths):
    """{path as given: [Flag]} for a batch of notebook files, nearly identical answers included (one flag per
    notebook and exercise, naming every other notebook with that answer). A file that cannot be read has no flags."""
    flags, answers = {}, {}
    for path in paths:
        nb = _read(path)
        flags[str(path)], answers[str(path)] = notebook_flags(nb) if nb is not None else ([], {})
    twins: dict = {}  # (notebook, exercise) -> the other notebooks with a nearly identical answer
    names = list(answers)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            for exercise, tokens in answers[first].items():
                if exercise in answers[second] and nearly_identical(tokens, answers[second][exercise]):
                    twins.setdefault((first, exercise), []).append(second)
                    twins.setdefault((second, exercise), []).append(first)
    for (notebook, exercise), others in twins.items():
        whose = f"{others[0]}'s answer" if len(others) == 1 else \
            f"the answers of {len(others)} other notebooks: {', '.join(others)}"
        flags[notebook].append(Flag(exercise, f"`{exercise}` is nearly identical to {whose}"))
    return flags
