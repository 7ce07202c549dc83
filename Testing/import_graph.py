"""The project's import graph, read with ``ast`` (function-level imports included), for the
architecture tests: which module imports which, and the strongly connected components (cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Folders whose children are importable roots (Slicer adds PASTA/ and PASTASynth/ to the path).
SOURCE_ROOTS = (REPO / "PASTA", REPO / "PASTASynth", REPO / "Training")


def project_modules(roots=SOURCE_ROOTS) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the source roots."""
    modules = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def module_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name resolves to its longest known prefix)."""
    modules = project_modules() if modules is None else modules
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported_names(module, path):
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts:
                targets.add(".".join(parts))
        targets.discard(module)
        graph[module] = targets
    return graph


def package_of(module: str, modules: dict[str, Path]) -> str:
    """The unit a layer is made of: a sub-package of PASTALib (``PASTALib.io``), a top-level module
    of PASTALib (``PASTALib.errors``), or else the top-level package (``PASTASynthLib``)."""
    parts = module.split(".")
    if parts[0] == "PASTALib" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def package_graph(graph: dict[str, set[str]], modules: dict[str, Path]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        a = package_of(source, modules)
        packages.setdefault(a, set())
        for target in targets:
            b = package_of(target, modules)
            if a != b:
                packages[a].add(b)
    return packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found
