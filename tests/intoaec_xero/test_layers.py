"""The package's imports read one way: no cycle, hidden or dodged, and checks never call stages.

Read from the source (no import is executed), so a cycle through a package ``__init__`` counts,
and a function-level import counts as dodging a cycle when making it a module-level import would
close one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "intoaec_xero"
ROOT = Path(__file__).resolve().parents[2] / "include" / PACKAGE

# The stages of the flow; quality/ is a library of checks they call, never the other way round.
STAGES = {"client", "extract", "transform", "validate", "load", "pipeline", "backfill"}
# Entry points sit above everything and may call any stage.
ENTRY_POINTS = {"intoaec_xero.cli", "intoaec_xero.quality.cli", "intoaec_xero.backfill.cli", "intoaec_xero.demo"}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in root.rglob("*.py")}


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The package modules an import statement loads, packages on the way included."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    loaded = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and "." in prefix:
                loaded.add(prefix)
    return sorted(loaded)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(module-level imports, imports inside functions) of one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    top: set[str] = set()
    inner: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only: never executed
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (inner if in_function else top).update(_targets(child, module, is_package, known))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top - {module}, inner - {module}


def _graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules(root)
    known = set(modules)
    top, inner = {}, {}
    for name, path in modules.items():
        # A module's own parent packages are already being imported when it runs.
        ancestors = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        top[name], inner[name] = (found - ancestors for found in _imports(path, name, known))
    return top, inner


def _path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    stack, seen = [(start, [start])], {start}
    while stack:
        node, trail = stack.pop()
        if node == goal:
            return trail
        for nxt in sorted(graph.get(node, ())):
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*trail, nxt]))
    return None


def _cycles(top: dict[str, set[str]]) -> list[str]:
    cycles = []
    for module, targets in sorted(top.items()):
        for target in sorted(targets):
            back = _path(top, target, module)
            if back:
                cycles.append(" -> ".join([module, *back]))
    return cycles


def _dodges(top: dict[str, set[str]], inner: dict[str, set[str]]) -> list[str]:
    dodges = []
    for module, targets in sorted(inner.items()):
        for target in sorted(targets):
            back = _path(top, target, module)
            if back:
                dodges.append(f"{module} imports {target} inside a function because "
                              + " -> ".join(back) + " imports it back")
    return dodges


def test_module_level_imports_have_no_cycle():
    top, _ = _graph()
    cycles = _cycles(top)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_function_level_import_dodges_a_cycle():
    dodges = _dodges(*_graph())
    assert not dodges, "\n".join(dodges)


def test_quality_never_imports_the_stages():
    top, inner = _graph()
    offenders = []
    for module in sorted(top):
        if not module.startswith(f"{PACKAGE}.quality") or module in ENTRY_POINTS:
            continue
        for target in sorted(top[module] | inner[module]):
            stage = target.split(".")[1] if target.count(".") >= 1 else ""
            if stage in STAGES:
                offenders.append(f"{module} imports {target}")
    assert not offenders, "quality/ must stay a library of checks:\n" + "\n".join(offenders)


def test_the_checker_finds_a_cycle_through_a_package_init_and_a_dodge(tmp_path):
    # pipeline -> checks.reconcile -> history.progress -> history/__init__ -> history.walk -> pipeline,
    # the shape this package once had; and a function-level import that dodges it.
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "pipeline.py": "from pkg.checks import reconcile\n",
        "checks/__init__.py": "",
        "checks/reconcile.py": "from pkg.history import progress\n",
        "history/__init__.py": "from pkg.history.walk import run\n",
        "history/progress.py": "",
        "history/walk.py": "from pkg import pipeline\n",
        "report.py": "import pkg.pipeline\n",
        "lazy.py": "def f():\n    from pkg import report\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "report.py").write_text("import pkg.pipeline\nimport pkg.lazy\n")
    top, inner = _graph(root)
    assert ("pkg.pipeline -> pkg.checks.reconcile -> pkg.history -> pkg.history.walk -> pkg.pipeline"
            in _cycles(top))
    assert _dodges(top, inner) == ["pkg.lazy imports pkg.report inside a function because "
                                   "pkg.report -> pkg.lazy imports it back"]
