#!/usr/bin/env python3
"""Print the package-level import graph of newsletter/ and jobs/; exit 1 on a cycle or a repeated name.

Every import counts, module level or inside a function, except those under `if TYPE_CHECKING:`
(they never run). A node is a stage package (newsletter.reports, ...), a top-level module
(newsletter.config, ...), the app factory (newsletter) or the jobs package. Cycles are looked for
twice: between nodes, and between single modules (two modules of one package importing each other).

    python scripts/import_graph.py [--modules]
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("newsletter", "jobs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that this module imports, anywhere in its body."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import module` imports the module; `from module import name` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def node_of(module: str, modules: dict[str, Path]) -> str:
    """The graph node a module belongs to: its stage package, or itself at the top level."""
    parts = module.split(".")
    if parts[0] == "jobs":
        return "jobs"
    if len(parts) >= 2 and modules.get(".".join(parts[:2]), Path()).name == "__init__.py":
        return ".".join(parts[:2])
    return module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def repeated_names(modules: dict[str, Path]) -> dict[str, list[str]]:
    """Module file names used more than once (packages' __init__ aside)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, path in modules.items():
        if path.name != "__init__.py":
            by_name[path.stem].append(name)
    return {stem: sorted(names) for stem, names in by_name.items() if len(names) > 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", action="store_true", help="also print the module-level graph")
    args = parser.parse_args()

    modules = discover()
    module_graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    package_graph: dict[str, set[str]] = defaultdict(set)
    for name, targets in module_graph.items():
        source = node_of(name, modules)
        package_graph[source]  # every node is listed, even one that imports nothing of ours
        package_graph[source].update(node_of(t, modules) for t in targets if node_of(t, modules) != source)

    print("package-level import graph (an arrow means 'imports'):")
    for node in sorted(package_graph):
        print(f"  {node} -> {', '.join(sorted(package_graph[node])) or '(nothing of ours)'}")
    if args.modules:
        print("\nmodule-level import graph:")
        for name in sorted(module_graph):
            print(f"  {name} -> {', '.join(sorted(module_graph[name])) or '(nothing of ours)'}")

    failures = 0
    for component in cycles(package_graph):
        print(f"\nCYCLE between packages: {' <-> '.join(component)}")
        failures += 1
    for component in cycles(module_graph):
        print(f"\nCYCLE between modules: {' <-> '.join(component)}")
        failures += 1
    for stem, names in sorted(repeated_names(modules).items()):
        print(f"\nREPEATED module name {stem!r}: {', '.join(names)}")
        failures += 1
    if failures:
        print(f"\n{failures} problem(s)")
        return 1
    print(f"\nno cycles, no repeated module names ({len(modules)} modules, {len(package_graph)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
