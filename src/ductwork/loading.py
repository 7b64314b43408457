"""Finding flows in files: import a flow file, collect its flows, report what went wrong.

Importing user code happens only here (and in workers), never in the scheduler (ADR 0001). A
file that fails to import, or defines an invalid flow, becomes a ``FlowImportError`` naming the
file, the line and the original error; the other files of the folder still load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ductwork.core.decorators import FlowFunction
from ductwork.core.definition_context import start_collecting, stop_collecting
from ductwork.core.flow import Flow
from ductwork.core.graph import FlowGraph
from ductwork.errors import DuctworkError, FlowImportError, NotFoundError, did_you_mean

FLOW_MODULE_PREFIX = "ductwork_flows_"


def module_name_for(path: Path) -> str:
    """A stable module name for a flow file, unlikely to clash with real packages."""
    resolved = str(path.resolve())
    digest = hashlib.sha1(resolved.encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"{FLOW_MODULE_PREFIX}{digest}_{stem}"


def _error_line(exc: BaseException, file: str) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == Path(file).resolve():
        return exc.lineno
    line = None
    target = str(Path(file).resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


def _undecodable_name(path: Path) -> str | None:
    """What to rename when ``path`` (as imported: absolute) is not UTF-8: the file, or the
    folder of its path that is not (a project in a folder named in Latin-1 had each of its
    files told to rename itself, which changed nothing)."""
    for part in reversed(path.absolute().parts):
        try:
            part.encode()
        except UnicodeEncodeError:
            if part == path.name:
                return "the file's name is not valid UTF-8 (made with another encoding?): rename it"
            shown = os.fsencode(part).decode("utf-8", "backslashreplace")
            return (
                f"the folder '{shown}' in the file's path is not valid UTF-8 (made with another encoding?): rename it"
            )
    return None


def import_file(path: str | Path, *, module_name: str | None = None) -> ModuleType:
    """Import a Python file as a module; errors become ``FlowImportError`` with file and line."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"flow file {str(path)!r} does not exist")
    undecodable = _undecodable_name(path)
    if undecodable is not None:  # a name made with another encoding: "surrogates not allowed" said nothing
        raise FlowImportError(str(path), None, undecodable) from None
    activate_compat()
    name = module_name or module_name_for(path)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path.resolve()):
        return sys.modules[name]
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise FlowImportError(str(path), None, "not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    token = start_collecting()
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        stop_collecting(token)
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc) if isinstance(exc, DuctworkError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SyntaxError):
            message = f"SyntaxError: {exc.msg}"
        raise FlowImportError(
            str(path), _error_line(exc, str(path)), message, "".join(traceback.format_exception(exc))
        ) from exc
    module.__dict__.setdefault(COLLECTED_FLOWS, stop_collecting(token))
    return module


COLLECTED_FLOWS = "__ductwork_flows__"
"""Module attribute listing the flows whose ``with`` block ended while the file was imported."""


def activate_compat() -> None:
    """Let flow files ``import airflow`` / ``import luigi`` when only Ductwork's shims provide
    them (a no-op when the ``.pth`` hook already did it; real packages always win)."""
    import _ductwork_compat

    _ductwork_compat.install()


@dataclass
class LoadedFile:
    path: str
    flows: list[Flow] = field(default_factory=list)
    errors: list[FlowImportError] = field(default_factory=list)
    graphs: dict[str, FlowGraph] = field(default_factory=dict)
    """The graphs compiled while validating the flows, by flow id: a command that runs a flow
    at once need not compile a 5,000-task graph a second time."""


def flows_in_module(module: ModuleType, path: str) -> LoadedFile:
    """The flows a module defines at top level (``Flow`` objects and ``@flow`` functions), each
    validated; an invalid flow becomes an error of the file without hiding the others."""
    loaded = LoadedFile(path)
    seen: dict[str, Any] = {}
    twice: dict[str, list[int | None]] = {}
    for value in [*vars(module).values(), *getattr(module, COLLECTED_FLOWS, ())]:
        if isinstance(value, FlowFunction):
            line = value.function.__code__.co_firstlineno
            try:
                flow = value.build()
            except DuctworkError as exc:
                loaded.errors.append(FlowImportError(path, _error_line(exc, path) or line, str(exc)))
                continue
            except Exception as exc:
                loaded.errors.append(
                    FlowImportError(
                        path,
                        _error_line(exc, path) or line,
                        f"{type(exc).__name__}: {exc}",
                        "".join(traceback.format_exception(exc)),
                    )
                )
                continue
        elif isinstance(value, Flow):
            flow = value
        else:
            continue
        if flow.flow_id in seen:
            if seen[flow.flow_id] is not flow and not _same_function(seen[flow.flow_id], flow):
                lines = twice.setdefault(flow.flow_id, [seen[flow.flow_id].defined_at[1]])
                if flow.defined_at[1] not in lines:
                    lines.append(flow.defined_at[1])
            continue
        try:
            graph = flow.to_graph()
        except DuctworkError as exc:
            loaded.errors.append(FlowImportError(path, flow.defined_at[1], str(exc)))
            seen[flow.flow_id] = flow
            continue
        seen[flow.flow_id] = flow
        loaded.flows.append(flow)
        loaded.graphs[flow.flow_id] = graph
    for flow_id, lines in twice.items():
        _take_neither(loaded, flow_id, lines)
    return loaded


def _take_neither(loaded: LoadedFile, flow_id: str, lines: list[int | None]) -> None:
    """A flow id the file defines more than once: neither definition is taken, as for two files
    (``duplicate_flow_message``); the first one was, silently at ``ductwork run``, so a copy
    pasted below it with the id left unchanged ran the old code. One error, at the second."""
    loaded.flows = [f for f in loaded.flows if f.flow_id != flow_id]
    loaded.graphs.pop(flow_id, None)
    count = "twice" if len(lines) == 2 else f"{len(lines)} times"
    shown = sorted(line for line in lines if line is not None)
    where = f" (lines {', '.join(map(str, shown[:-1]))} and {shown[-1]})" if len(shown) == len(lines) else ""
    message = (
        f"flow id {flow_id!r} is defined {count} in this file{where}: neither definition is taken "
        "(nor by the scheduler) until only one defines it"
    )
    loaded.errors.append(FlowImportError(loaded.path, shown[1] if len(shown) > 1 else None, message))


def _same_function(a: Flow, b: Flow) -> bool:
    return a.defined_at == b.defined_at


def load_file(path: str | Path) -> LoadedFile:
    if Path(path).suffix.lower() in DECLARATIVE_SUFFIXES:
        from ductwork.declarative import load_file as load_declarative

        flows, errors = load_declarative(path)
        return LoadedFile(str(path), flows=flows, errors=errors)
    try:
        module = import_file(path)
    except FlowImportError as exc:
        return LoadedFile(str(path), errors=[exc])
    return flows_in_module(module, str(path))


DECLARATIVE_SUFFIXES = (".json", ".yaml", ".yml")
"""Pipelines written as data (``ductwork.declarative``), found in the flows folder beside Python files."""


def flow_files(folder: str | Path) -> list[Path]:
    """Flow files of a flows folder (Python and declarative pipelines), recursively, skipping
    private and hidden ones and what an ``.airflowignore`` file leaves out (``ignore_patterns``)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found: list[Path] = []

    def walk(directory: Path, rules: list[tuple[Path, re.Pattern[str]]]) -> None:
        rules = rules + ignore_patterns(directory)
        for entry in directory.iterdir():
            if entry.name.startswith((".", "_")) or any(
                pattern.search(entry.relative_to(base).as_posix()) for base, pattern in rules
            ):
                continue
            if entry.is_dir():
                if not entry.is_symlink():  # as rglob: a linked folder is not entered (nor looped in)
                    walk(entry, rules)
            elif entry.suffix.lower() in (".py", *DECLARATIVE_SUFFIXES) and entry.is_file():
                found.append(entry)

    walk(root, [])
    return sorted(found)


def ignore_patterns(directory: Path) -> list[tuple[Path, re.Pattern[str]]]:
    """The regular expressions of ``directory/.airflowignore`` with the folder they are relative
    to, as Airflow reads them (its default ``regexp`` syntax): a file or folder below whose path
    from there matches one is not loaded, and a folder's whole tree is skipped. A DAGs folder
    moved from Airflow keeps its tests, scripts and helpers out of parsing that way; they were
    imported as flow files here (a script's top-level code run by every parse). Text after ``#``
    is a comment; a line that is no regular expression is passed over."""
    file = directory / ".airflowignore"
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rules = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rules.append((directory, re.compile(line)))
        except re.error:
            continue
    return rules


@dataclass
class FlowBag:
    """Everything found in a flows folder."""

    flows: dict[str, Flow] = field(default_factory=dict)
    errors: list[FlowImportError] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def discover(paths: Iterable[str | Path]) -> FlowBag:
    bag = FlowBag()
    found: dict[str, list[tuple[str, Flow]]] = {}
    for item in paths:
        item = Path(item)
        files = flow_files(item) if item.is_dir() else [item]
        for file in files:
            loaded = load_file(file)
            bag.errors.extend(loaded.errors)
            for flow in loaded.flows:
                found.setdefault(flow.flow_id, []).append((str(file), flow))
    for flow_id, places in found.items():
        if len(places) == 1:
            bag.files[flow_id], bag.flows[flow_id] = places[0]
            continue
        for where, flow in places:
            others = [f for f, _ in places if f != where]
            bag.errors.append(
                FlowImportError(where, flow.defined_at[1], duplicate_flow_message(flow_id, where, others))
            )
    return bag


def duplicate_flow_message(flow_id: str, file: str, others: Iterable[str]) -> str:
    """Why a flow id two files define is taken from neither: the scheduler does the same, and
    "the first file wins" would let a new file silently replace a flow's code."""
    return (
        f"flow id {flow_id!r} is also defined in {', '.join(others)}: neither definition is taken "
        f"(nor by the scheduler) until only one file defines it; run this one as {file}:{flow_id}"
    )


def names_a_file(ref: str) -> bool:
    """Whether a flow reference names a file (``path/to/file.py[:flow_id]``), not a flow id."""
    file_part = ref.partition(":")[0]
    return file_part.endswith((".py", *DECLARATIVE_SUFFIXES)) or Path(file_part).is_file()


def load_flow(ref: str, flows_folder: str | Path) -> Flow:
    """A flow from ``path/to/file.py:flow_id``, ``path/to/file.py`` (its only flow) or a flow id
    found in the flows folder."""
    return load_flow_and_graph(ref, flows_folder)[0]


def load_flow_and_graph(ref: str, flows_folder: str | Path) -> tuple[Flow, FlowGraph | None]:
    """``load_flow``, with the graph compiled when the flow was validated (``None`` for a flow
    found by the folder's discovery). It stays the flow's graph until the caller changes the flow."""
    file_part, _, flow_id = ref.partition(":")
    if names_a_file(ref):
        loaded = load_file(file_part)
        flows = {f.flow_id: f for f in loaded.flows}
        chosen = flow_in_file(file_part, flow_id, flows, loaded.errors)
        return flows[chosen], loaded.graphs.get(chosen)
    bag = discover([flows_folder])
    flow_in_folder(ref, flows_folder, bag.flows, bag.errors)
    return bag.flows[ref], None


def flow_in_file(named: str, flow_id: str, flows: Collection[str], errors: Sequence[FlowImportError]) -> str:
    """Which of the flows of the file ``named`` the reference ``named[:flow_id]`` means: the
    flow named, or the file's only flow. Otherwise the import error that explains its absence
    (a pipeline file's first problem says how many more there are), or a ``NotFoundError`` with
    the flows there are. One answer for every command, whether it imported the file
    (``load_flow``) or read the flow index (``cli.flow_index``)."""
    if errors and not flow_id:
        first = errors[0]
        if len(errors) > 1 and Path(named).suffix.lower() in DECLARATIVE_SUFFIXES:
            # a pipeline file's problems are all found at once: say there are more
            more = len(errors) - 1
            raise FlowImportError(
                first.file,
                first.line,
                f"{first.error} (and {more} more problem{'s' if more > 1 else ''}: "
                f"`ductwork pipelines validate {named}` lists them all)",
                first.traceback,
            )
        raise first
    if flow_id:
        if flow_id in flows:
            return flow_id
        for err in errors:
            if repr(flow_id) in str(err):
                raise err
        if errors:
            raise errors[0]
        raise NotFoundError(
            f"{named} has no flow {flow_id!r}.{did_you_mean(flow_id, flows)} "
            f"Flows in it: {', '.join(flows) or '(none)'}"
        )
    if len(flows) == 1:
        return next(iter(flows))
    raise NotFoundError(
        f"{named} defines {len(flows)} flows ({', '.join(flows) or 'none'}); name one as {named}:FLOW_ID"
    )


def flow_in_folder(
    ref: str, flows_folder: str | Path, flows: Collection[str], errors: Sequence[FlowImportError]
) -> None:
    """Nothing when the flows folder has a flow ``ref``; else the import error of the file that
    names it, or a ``NotFoundError`` with the flows there are and a likely misspelling."""
    if ref in flows:
        return
    for err in errors:
        if repr(ref) in str(err):
            raise err
    raise NotFoundError(
        f"no flow {ref!r} in the flows folder {str(flows_folder)!r}.{did_you_mean(ref, flows)} "
        f"Known flows: {', '.join(sorted(flows)) or '(none)'}" + _failed_files(errors)
    )


def _failed_files(errors: Sequence[FlowImportError], shown: int = 3) -> str:
    """The files that failed to load, each with its line and first line of error: the flow
    asked for is most often in one of them (an edit broke it), and "N file(s) failed" alone
    sent the user to another command to learn which."""
    if not errors:
        return ""
    lines = []
    for err in errors[:shown]:
        where = f"{err.file}:{err.line}" if err.line else err.file
        first = (err.error.strip().splitlines() or [""])[0]
        lines.append(f"\n  {where}: {first}")
    more = f"\n  ... and {len(errors) - shown} more" if len(errors) > shown else ""
    return f"; {len(errors)} file(s) failed to load (ductwork flows list shows them):{''.join(lines)}{more}"


def import_modules(names: Iterable[str]) -> list[ModuleType]:
    """Import modules by dotted name or file path (``build --module``); errors name the module."""
    activate_compat()
    modules = []
    for name in names:
        if name.endswith(".py") or "/" in name:
            modules.append(import_file(name))
            continue
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise NotFoundError(f"module {name!r} not found (is it on PYTHONPATH?)") from None
            # A module it imports is missing: said at the user's file and line (``broken:2``
            # named the module, with the line of whichever file the import failed in).
            raise _module_import_failed(name, exc) from exc
        except BaseException as exc:  # SystemExit, and import_guard's exit and timeout, too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _module_import_failed(name, exc) from exc
    return modules


def _module_import_failed(name: str, exc: BaseException) -> FlowImportError:
    """The error of module ``name`` (imported by dotted name) that failed to import with ``exc``,
    at the innermost line of the user's own files."""
    file = _module_file(exc) or name
    return FlowImportError(
        file,
        _error_line(exc, file) if file != name else None,
        str(exc) if isinstance(exc, DuctworkError) else f"{type(exc).__name__}: {exc}",  # as import_file says it
        "".join(traceback.format_exception(exc)),
    )


def _module_file(exc: BaseException) -> str | None:
    """The user's file the import failed in: the innermost frame outside the import machinery
    and outside Ductwork's own package. A bad ``IntParameter(default="x")`` in a module was
    reported at ``ductwork/core/params.py:83``, where the check raised, not at its own line."""
    own = Path(__file__).resolve().parent
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f
        for f in frames
        if not f.filename.startswith("<")
        and "importlib" not in f.filename
        and not Path(f.filename).resolve().is_relative_to(own)
    ]
    return user[-1].filename if user else None
