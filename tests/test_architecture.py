"""The architecture as a test: import-linter's contracts (``pyproject.toml``), a planted
violation that must break them, and no import cycle anywhere in the tree."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "models", "dashboard")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages under ``root`` with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def copy_tree(dest: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("where, line, contract", [
    ("pipeline/serve/planted.py", "from pipeline.research import training\n", "serving never imports research"),
    ("pipeline/core/planted.py", "from pipeline.serve import bundle\n", "the shared layer imports neither"),
    ("dashboard/planted.py", "from pipeline.research import export\n", "the dashboard uses serving"),
    ("models/planted.py", "import pipeline.serve.inference\n", "models imports no serving"),
    ("pipeline/core/planted.py", "import streamlit\n", "pipeline never imports the dashboard or Streamlit"),
])
def test_a_planted_violation_breaks_the_run(tmp_path, where, line, contract):
    root = copy_tree(tmp_path)
    (root / where).write_text(line)
    result = lint_imports(root)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in " ".join(broken.split()), result.stdout


def test_a_planted_cycle_breaks_the_run(tmp_path):
    root = copy_tree(tmp_path)
    (root / "pipeline/core/labels.py").write_text((root / "pipeline/core/labels.py").read_text()
                                                  + "\nfrom pipeline.core import audio  # noqa\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "no import cycles" in result.stdout


def _module_imports() -> dict[str, set[str]]:
    """module -> project modules it imports (anywhere in the file, lazily or not)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module)
                    found.update(f"{node.module}.{a.name}" for a in node.names)
            graph[module] = {m for m in found if m.split(".")[0] in PACKAGES}
    modules = set(graph)
    return {m: {i for i in imported if i in modules and i != m} for m, imported in graph.items()}


def test_no_import_cycle_between_modules():
    """Tarjan's strongly connected components over every module's imports, lazy ones
    included: no module reaches itself. (import-linter's acyclic contract checks siblings;
    this checks the whole graph, as the issue's measurement did.)"""
    graph = _module_imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # a package's __init__ importing its own modules is not a cycle of layers
            real = [m for m in component if not any(o.startswith(m + ".") for o in component)]
            if len(real) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_module_forwards_names():
    """Move, don't wrap: no module-level ``__getattr__`` and no import kept only to be
    re-exported (an imported name the module never uses)."""
    offenders = []
    for path in (REPO / "pipeline").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            offenders.append(f"{path.relative_to(REPO)}: module __getattr__")
        if path.name == "__init__.py":
            continue
        imported = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                for alias in node.names:
                    imported[alias.asname or alias.name] = node.lineno
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
               {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        for name, line in imported.items():
            if name not in used:
                offenders.append(f"{path.relative_to(REPO)}:{line}: {name} imported, never used")
    assert not offenders, offenders
