"""Habits that keep the code readable (issue 13): no import cycles inside the package, and every
environment variable the code reads is documented in README.md's configuration table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ingest_api"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports, at module level or inside functions alike (an import
    inside a function hides a cycle from Python, not from a reader)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                # a module importing its own package's __init__ (or a package its child) is not a cycle
                if t in mods and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert graph["ingest_api.ops.alerts"], "the import graph is empty: the walker is broken"
    assert cycles(graph) == []


ENV_NAME = re.compile(r"\b((?:EVAL360_[A-Z0-9_]+)|DATABASE_URL|INGEST_TOKEN)\b")


def test_every_environment_variable_read_is_in_the_readme():
    named: dict[str, str] = {}
    for path in [*(ROOT / "ingest_api").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), ROOT / "backfill.py"]:
        for name in ENV_NAME.findall(path.read_text()):
            named.setdefault(name, str(path.relative_to(ROOT)))
    assert "EVAL360_INGEST_TOKEN" in named  # the scan sees the settings module
    readme = (ROOT / "README.md").read_text()
    missing = {n: where for n, where in named.items() if f"`{n}`" not in readme}
    assert not missing, f"read by the code but not in README.md's configuration table: {missing}"
