"""No import-time side effects: importing Ductwork writes nothing and pulls in nothing heavy.

And the package's import structure: no import cycles anywhere, and the core imports nothing
above it. The graph is read from the source with ``ast`` (every ``import`` statement, including
those inside functions and under ``TYPE_CHECKING``), so a cycle hidden behind a lazy import or a
type-only import counts: those are still modules that cannot be understood, tested or moved
one without the other.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ductwork

HEAVY = [
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "jinja2",
    "rich",
    "click",
    "croniter",
    "sklearn",
    "httpx",
    "celery",
    "fsspec",
    "pyarrow",
    "pandas",
]


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "HOME": str(cwd), "DUCTWORK_HOME": str(cwd / "home")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def test_import_ductwork_is_light(tmp_path: Path) -> None:
    out = _python(
        f"import sys, json, ductwork; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))", tmp_path
    )
    assert json.loads(out) == []


def test_importing_every_module_touches_no_files(tmp_path: Path) -> None:
    code = (
        "import importlib, pkgutil, ductwork\n"
        "names = [m.name for m in pkgutil.walk_packages(ductwork.__path__, 'ductwork.')\n"
        "         if not m.name.startswith('ductwork.store.migrations.')  # Alembic scripts, run by Alembic\n"
        "         and not m.name.endswith('.__main__')]  # entry points: importing them runs them\n"
        "failed = []\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append((name, str(exc)))\n"
        "print(len(names), failed)\n"
    )
    out = _python(code, tmp_path)
    count, _, failed = out.partition(" ")
    assert int(count) > 30
    assert failed.strip() == "[]", failed
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "importing created files"


# --- the import graph ----------------------------------------------------------------------------
PACKAGE = Path(ductwork.__file__).parent
SKIPPED = ("ductwork.store.migrations.",)  # Alembic scripts, loaded by Alembic, not imported


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(SKIPPED)}


def _imported_names(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The dotted names the import statements of ``module`` bring in: ``from a import b`` is
    ``a.b`` when that is a module, else ``a``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                yield child if child in modules else source


def import_graph() -> dict[str, set[str]]:
    """Module -> the ductwork modules it imports."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {owner(n) for n in _imported_names(module, path, modules) if n.split(".")[0] == "ductwork"}
        # A module's own packages are imported before it whatever it says: not an edge.
        graph[module] = {t for t in targets if t is not None and t != module and not module.startswith(t + ".")}
    return graph


def missing_imports() -> list[tuple[str, str]]:
    """(module, name) for every import of a ``ductwork`` module that does not exist: a lazy
    import of a moved module fails only when its function runs."""
    modules = _modules()
    missing = []
    for module, path in modules.items():
        for name in _imported_names(module, path, modules):
            if name.split(".")[0] == "ductwork" and name not in modules:
                missing.append((module, name))
    return missing


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


KNOWN_CYCLIC_PACKAGES: list[str] = []
"""Packages whose modules may import each other in circles (none now: the declarative pipelines'
cycles were broken by moving what their operators share into ``datapipeline.plan``)."""


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the walk found the package
    for package in KNOWN_CYCLIC_PACKAGES:
        inside = [m for m in graph if m.startswith(package + ".")]
        assert inside, f"no package {package}: remove it from KNOWN_CYCLIC_PACKAGES"
        for module in inside:
            graph[module] = {t for t in graph[module] if not t.startswith(package + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_imported_ductwork_module_exists() -> None:
    assert missing_imports() == []


def test_the_core_imports_nothing_above_it() -> None:
    allowed = ("ductwork.core", "ductwork.errors")
    above = {
        (module, target)
        for module, targets in import_graph().items()
        if module.startswith("ductwork.core")
        for target in targets
        if not target.startswith(allowed) and target != "ductwork"
    }
    assert above == set(), f"core modules import from above the core: {sorted(above)}"


def test_the_cycle_finder_finds_cycles() -> None:
    # The checks above pass on an empty answer; make sure the finder can give another one.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


CLI_HEAVY = ["sqlalchemy", "alembic", "fastapi", "uvicorn", "jinja2", "celery", "psycopg", "pymysql", "httpx"]


def test_the_cli_entry_imports_no_database_web_or_broker_library(tmp_path: Path) -> None:
    """`ductwork --version` (and any command's start) pays only for the commands it runs:
    each command's module is imported when that command is used (issue 15's start-up target)."""
    code = (
        "import atexit, sys, json\n"
        "sys.argv = ['ductwork', '--version']\n"
        "from ductwork.cli.entry import main\n"
        # the command's last exit handler: the process ends in main() (cli.quick_exit)
        f"atexit.register(lambda: print(json.dumps([m for m in {CLI_HEAVY!r} if m in sys.modules])))\n"
        "main()\n"
    )
    out = _python(code, tmp_path).strip().splitlines()
    assert "version" in out[0]
    assert json.loads(out[-1]) == []


def test_a_command_on_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    """The schema check at a command's start answers without Alembic when the database is at
    the head revision (``store.schema_version``); Alembic is for upgrades and mismatches. A
    command that reads runs imports no engine (the supervisor comes with a run's progress
    display) and no other database's dialect."""
    subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "db", "upgrade"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "DUCTWORK_HOME": str(tmp_path / "home")},
        check=True,
        capture_output=True,
    )
    code = (
        "import atexit, sys, json\n"
        "sys.argv = ['ductwork', 'runs', 'list', '--json']\n"
        "from ductwork.cli.main import main\n"
        "atexit.register(lambda: print(json.dumps([m for m in ('alembic', 'fastapi', 'celery', 'rich.progress', "
        "'ductwork.engine.supervisor', 'sqlalchemy.dialects.postgresql') if m in sys.modules])))\n"
        "main()\n"
    )
    assert json.loads(_python(code, tmp_path).strip().splitlines()[-1]) == []


def test_the_first_command_on_a_new_home_does_not_import_alembic(tmp_path: Path) -> None:
    """A new database gets its whole schema in one step (``store.fresh_schema``), not by
    importing Alembic and replaying every migration: the first command on a new home is as
    quick as the next; the database it leaves is at the head revision."""
    code = (
        "import atexit, sys, json\n"
        "sys.argv = ['ductwork', 'runs', 'list', '--json']\n"
        "from ductwork.cli.main import main\n"
        "atexit.register(lambda: print(json.dumps([m for m in ('alembic',) if m in sys.modules])))\n"
        "main()\n"
    )
    assert not (tmp_path / "home").exists()
    out = _python(code, tmp_path).strip().splitlines()
    assert json.loads(out[-1]) == []
    assert json.loads("\n".join(out[:-1])) == {"total": 0, "runs": []}
    check = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "db", "check"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "DUCTWORK_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_head_revision_known_without_alembic_is_alembics_head() -> None:
    from ductwork.store import migrate, schema_version

    assert migrate.head_revision() == schema_version.HEAD_REVISION


def test_the_public_names_are_imported_when_first_used(tmp_path: Path) -> None:
    """``import ductwork`` imports none of its modules; each public name resolves (star import
    included) to the object its module defines, and the imports type checkers read under
    ``TYPE_CHECKING`` name the same modules as the lazy table. Nor does it import ``typing``
    (8-10 ms of every command's start)."""
    code = (
        "import sys, json, ductwork\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ductwork.') or m == 'typing')\n"
        "ns = {}\n"
        "exec('from ductwork import *', ns)\n"
        "print(json.dumps([loaded, sorted(k for k in ns if not k.startswith('__'))]))\n"
    )
    loaded, starred = json.loads(_python(code, tmp_path).strip().splitlines()[-1])
    assert loaded == []
    assert starred == sorted(n for n in ductwork.__all__ if n != "__version__")
    tree = ast.parse(Path(ductwork.__file__).read_text())
    typed = {
        alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom) and str(node.module).startswith("ductwork.")
        for alias in node.names
    }
    assert typed == ductwork._EXPORTS
    for name, module in ductwork._EXPORTS.items():
        assert getattr(ductwork, name) is getattr(__import__(module, fromlist=[name]), name)
