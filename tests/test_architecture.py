"""Habits that keep the code readable (issue 13): no import cycles inside the package; only the settings
module reads the environment, every variable is a documented setting, in README.md's configuration
table; every router is in the app's explicit list; no module is named test_* in tests/ without tests."""

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
    assert "ingest_api.ops.promotion" in graph["ingest_api.ops.alerts"]  # imports inside functions count too
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


# ------------------------------------------------------------------ the environment: one reader

SETTINGS_MODULE = ROOT / "ingest_api" / "core" / "settings.py"
_ENV_ATTRS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that touch the process environment: os.environ / os.getenv … (also imported
    from os by name)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in _ENV_ATTRS \
                and isinstance(node.value, ast.Name) and node.value.id == "os" or isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in _ENV_ATTRS for a in node.names):
            lines.append(node.lineno)
    return lines


def test_the_environment_finder_finds_reads():
    assert environment_reads("import os\nx = os.environ.get('A')\n") == [2]
    assert environment_reads("import os\nos.getenv('B')\n") == [2]
    assert environment_reads("from os import environ\n") == [1]
    assert environment_reads("import os\nos.path.join('a')\n") == []


def test_only_the_settings_module_reads_the_environment():
    files = [*(ROOT / "ingest_api").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), ROOT / "backfill.py"]
    assert SETTINGS_MODULE in files and environment_reads(SETTINGS_MODULE.read_text())
    readers = {str(p.relative_to(ROOT)): environment_reads(p.read_text()) for p in files if p != SETTINGS_MODULE}
    assert {p: lines for p, lines in readers.items() if lines} == {}, \
        "read the environment through ingest_api/core/settings.py (a Settings field)"


def test_every_setting_has_a_variable_a_default_and_a_meaning_in_the_readme():
    from ingest_api.core.settings import Settings, variables

    readme = (ROOT / "README.md").read_text()
    named = variables()
    assert len({f.name for f in __import__("dataclasses").fields(Settings)}) <= len(named)
    for name, _default, meaning in named:
        assert meaning.strip(), f"{name}: no help text"
        assert f"`{name}`" in readme, f"{name} is a setting but not in README.md's configuration table"
    # ... and each variable names one field: the code reads nothing the Settings object does not hold.
    code_names = set()
    for path in [*(ROOT / "ingest_api").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), ROOT / "backfill.py"]:
        code_names.update(ENV_NAME.findall(path.read_text()))
    unknown = code_names - {n for n, _, _ in named} - {"EVAL360_READER_PASSWORD"}  # a key in reader.env
    assert not unknown, f"named in the code but no setting holds them: {sorted(unknown)}"


# ------------------------------------------------------------------ the API's routers: an explicit list


def test_every_router_module_is_in_the_apps_list():
    import importlib
    import pkgutil

    from ingest_api.api import app as app_module
    from ingest_api.api import routes

    modules = [importlib.import_module(f"{routes.__name__}.{m.name}") for m in pkgutil.iter_modules(routes.__path__)]
    assert len(modules) >= 10
    missing = [m.__name__ for m in modules if m.router not in app_module.ROUTERS]
    assert not missing, f"routers not in ingest_api/api/app.py ROUTERS: {missing}"


def test_importing_a_router_registers_nothing():
    """No behaviour is switched on by importing a module: the routes package does not call into the rest
    at import time (the alert judgement, once registered by importing routes/alerts.py, is now passed
    explicitly by create_app)."""
    for path in (ROOT / "ingest_api" / "api" / "routes").glob("*.py"):
        tree = ast.parse(path.read_text())
        calls = [n.lineno for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
        assert not calls, f"{path.name}: a call at import time, line {calls}"


# ------------------------------------------------------------------ tests: helpers are not test modules


def test_every_test_module_holds_tests():
    empty = []
    for path in (ROOT / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text())
        if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
                   for n in ast.walk(tree)):
            empty.append(path.name)
    assert not empty, f"test_*.py modules without tests (helpers go in tests/plugins/): {empty}"


def test_no_test_module_imports_another():
    """Shared fixtures and helpers live in tests/plugins/ (registered in conftest), not in test modules."""
    offenders = {}
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                offenders.setdefault(path.name, []).append(node.module)
    assert not offenders, offenders
