"""What the judging process runs of a notebook: its answers and the plain imports they use, nothing else.

The exercises are functions of their arguments (or, for a value exercise, a value written in its cell), so the
answers can be judged without running the notebook: `program(nb, names)` picks, from the notebook's code cells,

- for each exercise, the top-level statements of the last cell defining its name (the cell as the student wrote it,
  `checks.NAME(...)` lines included: they fail harmlessly where `checks` does not exist);
- the top-level functions and classes of other cells that these use, by name (a helper the student wrote apart);
- the top-level `import` statements binding a name any of these use, except imports of the course (`tinycam`):
  the judging process cannot import it anyway, and an answer that needs it is not an answer.

IPython syntax (`%magic`, `!shell`) is turned into the Python IPython would run (`get_ipython()...`), which fails
in the judging process like any other statement that needs the notebook's kernel; a statement that fails is skipped.
Each unit is one top-level statement's source, executed in order in one namespace.
"""

import ast

COURSE_MODULES = {"tinycam"}


def _python(source):
    """The cell's syntax tree after IPython's transformations, or None when it is not Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError, TypeError):
        return None


def _defines(node):
    """The names a top-level statement defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return set()


def _uses(nodes):
    """Every name read anywhere in `nodes`."""
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def _imports_course(node):
    modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    return any(m.split(".")[0] in COURSE_MODULES for m in modules) or \
        (isinstance(node, ast.ImportFrom) and node.level > 0)


def program(nb, names):
    """The units (sources of top-level statements) that define the answers `names` in notebook `nb`, in order:
    imports, helpers, then each answer's cell."""
    cells = [tree for cell in nb.get("cells", []) if cell.get("cell_type") == "code"
             and (tree := _python(cell.get("source", ""))) is not None]
    answer_cells: list[ast.Module] = []
    for name in names:
        last = next((tree for tree in reversed(cells) if any(name in _defines(n) for n in tree.body)), None)
        if last is not None and all(last is not t for t in answer_cells):
            answer_cells.append(last)
    answer_cells.sort(key=lambda tree: next(i for i, t in enumerate(cells) if t is tree))
    statements = [node for tree in answer_cells for node in tree.body]
    definitions = {}  # helper name -> (its place, its last top-level def/class outside the answer cells)
    for place, tree in enumerate(cells):
        if all(tree is not t for t in answer_cells):
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name not in names:
                    definitions[node.name] = ((place, node.lineno), node)
    found: list = []
    used = _uses(statements)
    while True:  # helpers of helpers too
        new = [definitions.pop(n) for n in sorted(used & set(definitions))]
        if not new:
            break
        found.extend(new)
        used |= _uses([node for _, node in new])
    helpers = [node for _, node in sorted(found, key=lambda item: item[0])]
    imports = [node for tree in cells for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and not _imports_course(node) and _defines(node) & used]
    return [ast.unparse(node) for node in [*imports, *helpers, *statements]]
