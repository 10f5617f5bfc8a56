"""Imports flow one way inside each package too: no module of ssda_model or ssda_assets imports,
even through others or from inside a function, a module that imports it back.

Every import statement counts (module level and deferred ones in functions) but those under
`if TYPE_CHECKING:`, which never run. `from pkg import name` is an edge to `pkg.name` when that is
a module, else to `pkg`; importing `pkg.sub.mod` also runs `pkg/__init__` and `pkg/sub/__init__`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ssda_assets
import ssda_model

PACKAGES = {"ssda_model": Path(ssda_model.__file__).parent, "ssda_assets": Path(ssda_assets.__file__).parent}


def _modules(package: str, root: Path) -> dict[str, Path]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names this module's import statements name, outside `if TYPE_CHECKING:` blocks."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        stack += [child for child in ast.iter_child_nodes(node) if not _type_checking(child)]
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the two packages it imports (each import's parent packages included)."""
    paths = {
        name: path for package, root in PACKAGES.items() for name, path in _modules(package, root).items()
    }
    graph = {}
    for module, path in paths.items():
        targets = set()
        for name in _imported(ast.parse(path.read_text()), module, path.name == "__init__.py"):
            parts = name.split(".")
            # `from pkg import function` names pkg.function: keep the longest prefix that is a module
            hits = [".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in paths]
            targets |= set(hits)
        # a module importing its parent packages is not a cycle (Python runs them first anyway);
        # a package naming itself (`from pkg import sub` inside pkg) is not one either
        graph[module] = {
            t
            for t in targets
            if not module.startswith(t + ".") and not (t == module and path.stem == "__init__")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, and modules importing themselves
    (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One cycle through the component's first module, as `a → b → a`, for the failure message."""
    start, members = component[0], set(component)
    if len(component) == 1:
        return f"{start} → {start}"
    trail, seen = [start], {start}
    while True:
        step = sorted(t for t in graph[trail[-1]] if t in members)
        if start in step and len(trail) > 1:
            return " → ".join([*trail, start])
        nxt = next((t for t in step if t not in seen), None) or step[0]
        if nxt in seen:
            return " → ".join([*trail[trail.index(nxt) :], nxt])
        trail.append(nxt)
        seen.add(nxt)


def test_no_import_cycle_in_either_package():
    graph = import_graph()
    assert len(graph) > 50  # both packages were read
    assert [_path(graph, component) for component in cycles(graph)] == []


def test_the_check_sees_a_cycle_through_a_deferred_import():
    graph = {
        "ssda_assets.resources": {"ssda_assets.registry.training_run"},
        "ssda_assets.registry.training_run": {"ssda_assets.registry.versions"},
        "ssda_assets.registry.versions": {"ssda_assets.registry.lock"},
        "ssda_assets.registry.lock": {"ssda_assets.resources"},
        "ssda_assets.settings": set(),
    }
    assert cycles(graph) == [sorted(set(graph) - {"ssda_assets.settings"})]
    assert cycles({"ssda_model.model": {"ssda_model.model"}}) == [["ssda_model.model"]]
    source = "def f():\n    from ssda_assets.resources import dagster_home\n"
    assert "ssda_assets.resources" in _imported(ast.parse(source), "ssda_assets.registry.lock", False)
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ssda_assets import resources\n"
    assert "ssda_assets.resources" not in _imported(ast.parse(hidden), "ssda_assets.registry.lock", False)
