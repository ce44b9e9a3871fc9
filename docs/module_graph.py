"""Print mer-live's internal module graph (who imports whom) and any import cycles.

    python3 docs/module_graph.py            # the graph of ./mer_live, one line per module, by layer
    python3 docs/module_graph.py --cycles   # only the cycles; exit status 1 if there are any

Imports are read from the source with :mod:`ast` (nothing is imported). Every import counts, also those
inside functions ("lazy", marked ``*``): a cycle through a lazy import is still a knot. Layer 0 modules
import nothing from the package; a module's layer is one more than its highest dependency's.
``tests/test_imports.py`` uses :func:`module_graph` and :func:`cycles` to keep the package acyclic.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "mer_live"


def module_name(*, path: Path, root: Path) -> str:
    """``root/train/cli.py`` -> ``mer_live.train.cli``; ``__init__.py`` names its package."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(*, module: str, is_package: bool, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """The package modules that one ``from ... import ...`` statement in ``module`` loads."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = []
    for alias in node.names:  # ``from . import features`` loads the submodule, ``from . import X`` the package
        candidate = f"{target}.{alias.name}"
        found.append(candidate if candidate in known else target)
    return sorted({name for name in found if name in known})


def module_graph(*, root: Path = PACKAGE_DIR) -> dict[str, dict[str, bool]]:
    """``{module: {dependency: lazy}}`` for every module under ``root``; ``lazy`` is True when every
    import of that dependency sits inside a function."""
    paths = {module_name(path=p, root=root): p for p in sorted(root.rglob("*.py"))}
    known = set(paths)
    graph: dict[str, dict[str, bool]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top_level = {id(node) for node in tree.body}
        top_level |= {id(n) for node in tree.body if isinstance(node, (ast.If, ast.Try)) for n in ast.walk(node)}
        edges: dict[str, bool] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name in known]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(module=module, is_package=path.name == "__init__.py", node=node, known=known)
            else:
                continue
            lazy = id(node) not in top_level
            for target in targets:
                if target != module:
                    edges[target] = edges.get(target, True) and lazy
        graph[module] = edges
    return graph


def cycles(*, graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layers(*, graph: dict[str, dict[str, bool]]) -> dict[str, int]:
    """Each module's layer (0: imports nothing from the package); modules in a cycle share one."""
    components = {m: tuple(c) for c in cycles(graph=graph) for m in c}
    memo: dict[str, int] = {}

    def layer(module: str, seen: frozenset[str]) -> int:
        if module in memo:
            return memo[module]
        group = set(components.get(module, (module,)))
        deps = {d for m in group for d in graph[m]} - group
        value = max((layer(d, seen | group) + 1 for d in deps if d not in seen), default=0)
        for m in group:
            memo[m] = value
        return value

    return {module: layer(module, frozenset()) for module in graph}


def render(*, graph: dict[str, dict[str, bool]]) -> str:
    levels = layers(graph=graph)
    lines = []
    for module in sorted(graph, key=lambda m: (levels[m], m)):
        deps = sorted(graph[module], key=lambda d: (levels[d], d))
        text = ", ".join(d.removeprefix("mer_live.") + ("*" if graph[module][d] else "") for d in deps)
        lines.append(f"L{levels[module]} {module:<28} -> {text or '(leaf)'}")
    found = cycles(graph=graph)
    lines.append("")
    lines.append(f"{len(graph)} modules, {sum(len(d) for d in graph.values())} imports (* = inside a function)")
    lines.append("cycles: " + ("; ".join(" <-> ".join(c) for c in found) if found else "none"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PACKAGE_DIR, help="package folder (default: ./mer_live)")
    parser.add_argument("--cycles", action="store_true", help="print only the cycles; exit 1 if any")
    args = parser.parse_args(argv)
    graph = module_graph(root=args.root)
    if args.cycles:
        found = cycles(graph=graph)
        print("\n".join(" <-> ".join(c) for c in found) or "no cycles")
        return 1 if found else 0
    print(render(graph=graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
