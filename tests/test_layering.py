"""Import layering (docs/architecture.md): a test that fails when a layer reaches where it must not.

Two kinds of evidence: what a fresh interpreter has in `sys.modules` after importing every
module of a package (catches transitive imports), and an AST scan of the source (catches
imports inside functions, which run only later).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlops_tui

PACKAGE_ROOT = Path(mlops_tui.__file__).resolve().parent
UI_MODULES = ("textual", "typer")
CORE_FORBIDDEN = ("duckdb", "docker", "subprocess", "textual", "typer", "sklearn")

PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    baseline = set(sys.modules)
    package = importlib.import_module(sys.argv[1])
    imported = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
    print(json.dumps({"baseline": sorted(baseline), "modules": sorted(sys.modules),
                      "imported": imported}))
""")


@functools.cache
def modules_after_importing(package: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def top_level(names) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("package", ["mlops_tui.core", "mlops_tui.store", "mlops_tui.services"])
def test_headless_layers_never_load_ui_libraries(package):
    result = modules_after_importing(package)
    assert len(result["imported"]) > 1  # the walk found the package's modules
    loaded = top_level(result["modules"])
    for ui in UI_MODULES:
        assert ui not in loaded, f"importing {package} loads {ui}"


def test_core_loads_no_heavy_or_side_effect_modules():
    result = modules_after_importing("mlops_tui.core")
    # what the interpreter loads by itself before our first import does not count against
    # the core; today that excludes none of the forbidden modules, and the test says so
    at_startup = top_level(result["baseline"]) & set(CORE_FORBIDDEN)
    assert at_startup == set(), f"the interpreter itself loads {at_startup}"
    loaded = top_level(result["modules"])
    assert {m for m in CORE_FORBIDDEN if m in loaded} == set()


# -- static scan ---------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (imports for annotations, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                getattr(node.test, "id", None) == "TYPE_CHECKING"
                or getattr(node.test, "attr", None) == "TYPE_CHECKING"):
            for statement in node.body:
                skipped.update(id(inner) for inner in ast.walk(statement))
    return skipped


def imported_names(path: Path, root: Path, *, runtime_only: bool = False
                   ) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import anywhere in the file (with
    `runtime_only`, not those under `if TYPE_CHECKING:`)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def matches(name: str, target: str) -> bool:
    return name == target or name.startswith(target + ".")


def violations(root: Path, subpackage: str, forbidden: tuple[str, ...],
               allowed: tuple[str, ...] = ()) -> list[str]:
    """Imports in `root/subpackage` of anything under `forbidden` (unless under `allowed`)."""
    directory = root / subpackage if subpackage else root
    found = []
    for path in sorted(directory.rglob("*.py")):
        for line, name in imported_names(path, root):
            if any(matches(name, f) for f in forbidden) and not any(
                    matches(name, a) for a in allowed):
                found.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    return found


def test_the_scanner_finds_every_kind_of_import(tmp_path):
    root = tmp_path / "mlops_tui"
    (root / "cli").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "cli" / "__init__.py").write_text("from ..store import db\n")
    (root / "cli" / "a.py").write_text(textwrap.dedent("""
        import duckdb
        import duckdb.typing as t
        from duckdb import connect
        from mlops_tui import store
        from mlops_tui.store.db import Store
        from .. import store as s2
        from ..store.registry import get_version
        import mlops_tui.store.lock

        def later():
            import duckdb
            from mlops_tui.store import deployments
        from mlops_tui.services import status
        from mlops_tui.storefront import x
    """))
    found = violations(root, "cli", ("duckdb", "mlops_tui.store"))
    assert [f.split(" imports ")[1] for f in found] == [
        "mlops_tui.store.db",  # cli/__init__.py, relative
        "duckdb", "duckdb.typing", "duckdb.connect", "mlops_tui.store",
        "mlops_tui.store.db.Store", "mlops_tui.store", "mlops_tui.store.registry.get_version",
        "mlops_tui.store.lock", "duckdb", "mlops_tui.store.deployments",
    ]


def test_only_the_store_imports_duckdb():
    offenders = [v for v in violations(PACKAGE_ROOT, "", ("duckdb",))
                 if not v.startswith("mlops_tui/store/")]
    assert offenders == []
    assert violations(PACKAGE_ROOT, "store", ("duckdb",))  # and the store does


@pytest.mark.parametrize("subpackage", ["tui", "cli"])
def test_front_ends_never_touch_the_store(subpackage):
    assert (PACKAGE_ROOT / subpackage).is_dir()
    assert violations(PACKAGE_ROOT, subpackage, ("duckdb", "mlops_tui.store")) == []


def test_core_imports_nothing_with_side_effects():
    forbidden = CORE_FORBIDDEN + ("mlops_tui.store", "mlops_tui.services", "mlops_tui.artifacts",
                                  "mlops_tui.cli", "mlops_tui.tui", "mlops_tui.runners")
    assert violations(PACKAGE_ROOT, "core", forbidden) == []


def test_training_imports_only_itself_from_mlops_tui():
    # the harness runs inside job containers where only mlops_tui.training is shipped
    assert (PACKAGE_ROOT / "training").is_dir()
    assert violations(PACKAGE_ROOT, "training", ("mlops_tui",), ("mlops_tui.training",)) == []


def test_runners_never_import_the_store():
    runners = PACKAGE_ROOT / "runners"
    assert runners.is_dir() and list(runners.glob("*.py"))
    assert violations(PACKAGE_ROOT, "runners", ("duckdb", "mlops_tui.store")) == []


# -- no import cycles among the services ----------------------------------------------------


def import_graph(root: Path, subpackage: str) -> dict[str, set[str]]:
    """Module -> the modules of the same subpackage it imports when it runs (anywhere in the
    file, inside functions too; imports only for annotations do not count)."""
    directory = root / subpackage
    modules = {module_name(path, root): path for path in sorted(directory.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _, imported in imported_names(path, root, runtime_only=True):
            # `from pkg import mod` names pkg.mod, `from pkg.mod import f` names pkg.mod.f:
            # the longest prefix that is a module of the subpackage is the one imported
            parts = imported.split(".")
            target = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                           if ".".join(parts[:n]) in modules), None)
            if target is not None and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the strongly connected components of `graph`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_cycle_finder_finds_a_cycle_through_a_function_import(tmp_path):
    root = tmp_path / "mlops_tui"
    (root / "services").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "services" / "__init__.py").write_text("")
    (root / "services" / "a.py").write_text("from mlops_tui.services.b import f\n")
    (root / "services" / "b.py").write_text("def f():\n    from mlops_tui.services import a\n")
    (root / "services" / "c.py").write_text("from . import a\n")
    graph = import_graph(root, "services")
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == [{"mlops_tui.services.a", "mlops_tui.services.b"}]


def test_services_have_no_import_cycle():
    graph = import_graph(PACKAGE_ROOT, "services")
    assert len(graph) > 5  # the scan found the services
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == []
