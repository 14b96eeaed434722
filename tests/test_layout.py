"""The tree shows the architecture: imports point one way, no cycle, no module name used twice."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402


def test_the_project_has_no_import_cycle_and_no_repeated_module_name():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py")], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout
    assert "no cycles, no repeated module names" in result.stdout


def test_cycles_are_found_between_any_number_of_nodes():
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert import_graph.cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer, forbidden", [
    ("newsletter", {"newsletter.cli", "jobs"}),  # create_app never imports the CLI or the jobs
    ("newsletter.models", {"newsletter.web", "newsletter.reports", "newsletter.delivery", "jobs"}),
    ("newsletter.reports", {"newsletter.web", "newsletter.cli", "newsletter.email", "newsletter.delivery", "jobs"}),
    ("newsletter.email", {"newsletter.web", "newsletter.cli", "newsletter.delivery", "jobs"}),
    ("newsletter.delivery", {"newsletter.web", "newsletter.cli", "jobs"}),
    ("jobs", {"newsletter", "newsletter.web", "newsletter.cli"}),
])
def test_imports_point_from_the_edges_to_the_services(layer, forbidden):
    modules = import_graph.discover()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        node = import_graph.node_of(name, modules)
        graph.setdefault(node, set()).update(import_graph.node_of(t, modules)
                                             for t in import_graph.imports_of(name, path, modules))
    assert not graph[layer] & forbidden, graph[layer] & forbidden


def test_function_level_imports_are_counted(tmp_path, monkeypatch):
    package = tmp_path / "newsletter"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from . import b\n")
    (package / "b.py").write_text("from .a import f\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    monkeypatch.setattr(import_graph, "PACKAGES", ("newsletter",))
    modules = import_graph.discover()
    graph = {name: import_graph.imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["newsletter.a"] == {"newsletter.b"} and graph["newsletter.c"] == set()
    assert import_graph.cycles(graph) == [["newsletter.a", "newsletter.b"]]
