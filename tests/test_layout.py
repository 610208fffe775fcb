"""The package's shape: the library stands apart from the course, no import cycles, no private names imported
across modules, every subpackage installed, and a plain (non-editable) install finds its data."""

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinycam"


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every tinycam module `path` imports (at the top or inside a function), with the names it takes from each."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.startswith("tinycam")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinycam"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (submodule.replace(".", "/") + ".py")).exists() or (
                    PACKAGE.parent / submodule.replace(".", "/")).is_dir()
                found.append((submodule, None) if is_module else (node.module, alias.name))
    return found


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {target for target, _ in _imports(path) if target != name} for name, path in MODULES.items()}


def test_the_library_imports_nothing_from_the_course():
    library = [name for name in MODULES if not name.startswith("tinycam.course")]
    offenders = {name: sorted(t for t in GRAPH[name] if t.startswith("tinycam.course")) for name in library}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_private_name_is_imported_across_modules():
    private = [(name, module, taken) for name, path in MODULES.items() for module, taken in _imports(path)
               if taken is not None and taken.startswith("_") and module != name]
    assert private == []


def test_there_is_no_import_cycle():
    def visit(name, path):
        if name in path:
            return path[path.index(name):] + [name]
        for target in GRAPH.get(name, ()):
            # a package's __init__ importing its own submodules is how packages are built, not a cycle
            if target in MODULES and not name.startswith(target + ".") and not (
                    MODULES[name].name == "__init__.py" and target.startswith(name + ".")):
                cycle = visit(target, path + [name])
                if cycle:
                    return cycle
        return None

    cycles = [cycle for name in MODULES if (cycle := visit(name, []))]
    assert cycles == []


def test_every_subpackage_is_installed():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(path.parent / "__init__.py") for path in PACKAGE.rglob("__init__.py")} | {"tinycam.data"}
    assert declared == found


def test_a_plain_install_loads_the_models_lecture_numbers_and_checks(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True)
    script = (
        "import tinycam, tinycam.course.checks as checks\n"
        "from tinycam.course import lecture\n"
        "model = tinycam.load_model('gap')\n"
        "print(tinycam.__file__)\n"
        "print(len(checks.EXERCISES), lecture.worked_example()['alphas'].tolist())\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", script], cwd=outside, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    where, numbers = result.stdout.splitlines()
    assert Path(where).is_relative_to(target)  # the installed copy, not the checkout
    assert numbers.endswith("[2.75, 4.25, 0.1]")
