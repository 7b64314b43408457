"""What the CLI knows of the flow files: each file parsed in a child process, and remembered.

Commands that only need a flow's definition (``flows list``, ``show``, ``graph``, ``trigger``,
``backfill``, ``pause``) never import user code in their own process: a file that calls
``os._exit(0)`` would otherwise end the command with status 0 having done nothing, and a file
that hangs would hang it. Files are imported by ``engine.parse_batch`` (one child for all the
files that need it, a timeout per file) and the result is kept under ``$DUCTWORK_HOME/cache``.
The next command answers from that record as long as nothing it depended on changed: the
file (modification time and size), the user modules its import loaded, the Ductwork version
and interpreter, the working folder, the settings file and the ``DUCTWORK_*`` environment (and
the ``AIRFLOW_*`` and ``LUIGI_CONFIG_PATH`` variables the shims read).
A file that failed to load (an import error, or it stopped or ended its parsing process) is not
remembered: it is tried again, and reported again, every time, so a fix made outside it (a
package installed, a module added) is seen at once.

``ductwork run`` imports the flow's one file in its own process (its tasks run there), once,
under ``import_guard`` instead of parsing it here first; a flow it names by id is found here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductwork.errors import DuctworkError, FlowImportError, NotFoundError

if TYPE_CHECKING:
    from ductwork.core.triggers import SharedBetweenFlows

_ENV_READ = ("DUCTWORK_", "AIRFLOW_", "LUIGI_CONFIG_PATH")
"""Environment variables a parse depends on: a change to one parses every file again."""

FORMAT = 3
"""Bumped when what is kept changes shape: older records are then ignored."""

FORGET_AFTER = 30 * 86400
"""Seconds after which the records and graphs of other contexts are deleted (when a parse
writes the index): every context (a Ductwork upgrade, another setting or working folder) keeps
records of its own, and those of contexts gone for good were kept for ever."""


@dataclass(frozen=True)
class FlowSummary:
    """What ``flows list`` shows of a flow, kept apart from its (possibly large) graph."""

    flow_id: str
    schedule: str
    tasks: int
    style: str
    tags: tuple[str, ...]
    owner: str
    description: str
    line: int | None
    triggers: tuple[Mapping[str, Any], ...] = ()
    """The flow's message triggers as recorded (``MessageTrigger.to_dict``): ``flows list``
    looks across flows for a queue or consumer group that two of them name."""


@dataclass
class FileEntry:
    file: str
    """Absolute path."""
    flows: dict[str, FlowSummary] = field(default_factory=dict)
    errors: list[FlowImportError] = field(default_factory=list)
    graph_path: Path | None = None
    parsed: Mapping[str, Any] | None = None
    """The graphs just parsed (as dicts by flow id), kept here too: a home that cannot be
    written (read-only, full) has no copy on disk."""

    def graph(self, flow_id: str) -> Any:
        """The ``FlowGraph`` of one of this file's flows."""
        from ductwork.core.graph import FlowGraph

        if self.parsed is not None:
            return FlowGraph.from_dict(self.parsed[flow_id])
        assert self.graph_path is not None, self.file
        data = json.loads(self.graph_path.read_text())
        return FlowGraph.from_dict(data[flow_id])


@dataclass
class FolderView:
    """The flows of a folder: each flow id with the file that defines it (none, when two files
    define the same id: each of them has an error saying so), and every file's errors."""

    entries: dict[str, FileEntry]
    flows: dict[str, FileEntry] = field(default_factory=dict)
    errors: list[FlowImportError] = field(default_factory=list)

    def __post_init__(self) -> None:
        from ductwork.loading import duplicate_flow_message

        defined: dict[str, list[FileEntry]] = {}
        for entry in self.entries.values():
            self.errors.extend(entry.errors)
            for flow_id in entry.flows:
                defined.setdefault(flow_id, []).append(entry)
        for flow_id, entries in defined.items():
            if len(entries) == 1:
                self.flows[flow_id] = entries[0]
                continue
            for entry in entries:
                others = [shown_path(e.file) for e in entries if e is not entry]
                message = duplicate_flow_message(flow_id, shown_path(entry.file), others)
                self.errors.append(FlowImportError(shown_path(entry.file), entry.flows[flow_id].line, message))

    def shared_triggers(self) -> list[SharedBetweenFlows]:
        """The queues, consumer groups, durable consumers and MQTT client ids that the message
        triggers of more than one flow of the folder name: only one of those flows listens there
        (``engine.triggerer``; ``core.triggers.shared_between_flows``)."""
        from ductwork.core.triggers import MessageTrigger, shared_between_flows, trigger_from_dict

        by_flow: dict[str, list[MessageTrigger]] = {}
        for flow_id, entry in self.flows.items():
            for data in entry.flows[flow_id].triggers:
                try:
                    by_flow.setdefault(flow_id, []).append(trigger_from_dict(data))
                except DuctworkError:  # recorded by another version: nothing to compare
                    continue
        return shared_between_flows(by_flow)


def shown_path(file: str) -> str:
    """A file as a user would name it: relative to the working folder when inside it."""
    try:
        return str(Path(file).relative_to(Path.cwd()))
    except ValueError:
        return file


def _stamp(path: str, seen: dict[str, list[int] | None]) -> list[int] | None:
    """(modification time in ns, size) of a file, or None when it is gone; cached per look."""
    if path not in seen:
        try:
            st = os.stat(path)
            seen[path] = [st.st_mtime_ns, st.st_size]
        except OSError:
            seen[path] = None
    return seen[path]


def _graph_shape() -> list[list[str]]:
    """The fields (and their types) of the graph model a record keeps. ``FlowGraph.from_dict``
    reads an older record without complaint, a field it lacks taking its default (an Airflow
    DAG's ``params_in_conf`` read as False), and the version stays the same across the
    development of a release (an editable install, a git checkout): a record of another shape
    was served as if it were current. A new field now makes every file parse again."""
    from dataclasses import fields

    from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec

    return [[f"{f.name}: {f.type}" for f in fields(cls)] for cls in (FlowGraph, FlowMeta, NodeSpec)]


class FlowIndex:
    """The parsed flow files of one context (see the module docstring), kept in ``home``."""

    def __init__(
        self,
        home: Path,
        *,
        timeout: float = 60.0,
        config_path: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.environ = dict(os.environ if environ is None else environ)
        if config_path is not None:  # the parsing child reads the same settings file
            self.environ["DUCTWORK_CONFIG"] = str(Path(config_path).resolve())
        self.folder = home / "cache" / "flow-index"
        self.context = self._context()
        self.path = self.folder / f"{self.context[:16]}.json"
        self._records: dict[str, Any] | None = None

    def _context(self) -> str:
        from ductwork import __version__

        config = self.environ.get("DUCTWORK_CONFIG", "ductwork.toml")
        settings_file = str(Path(config).resolve())
        # What a flow file may read at import besides its code: Ductwork's settings, variables
        # and connections, and those the Airflow and Luigi shims read (AIRFLOW_VAR_*,
        # AIRFLOW_CONN_*, LUIGI_CONFIG_PATH).
        env = sorted((k, v) for k, v in self.environ.items() if k.startswith(_ENV_READ))
        key = [
            FORMAT,
            __version__,
            _graph_shape(),
            sys.executable,
            os.getcwd(),
            settings_file,
            _stamp(settings_file, {}),
            env,
        ]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()

    # --- the record -------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self._records is None:
            try:
                data = json.loads(self.path.read_text())
                self._records = data["files"] if data.get("context") == self.context else {}
            except (OSError, ValueError, KeyError, TypeError):
                self._records = {}
        return self._records

    def _save(self) -> None:
        """Write the record (best effort: a home that cannot be written costs only speed)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"context": self.context, "files": self._load()}))
            os.replace(tmp, self.path)
        except OSError:
            pass
        self._forget_old()

    def _forget_old(self) -> None:
        """Delete the files of this folder not written for ``FORGET_AFTER`` seconds, except this
        context's record and the graphs it points at (best effort)."""
        keep = {str(self.path), *(str(self._graph_path(f)) for f in self._load())}
        cutoff = time.time() - FORGET_AFTER
        for folder in (self.folder, self.folder / "graphs"):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.path not in keep and entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    pass

    def _graph_path(self, file: str) -> Path:
        return self.folder / "graphs" / f"{hashlib.sha256((self.context + file).encode()).hexdigest()[:24]}.json"

    def _valid(self, file: str, record: Mapping[str, Any], seen: dict[str, list[int] | None]) -> bool:
        if record.get("stamp") != _stamp(file, seen):
            return False
        if record.get("flows") and not self._graph_path(file).exists():
            return False
        return all(_stamp(dep, seen) == stamp for dep, stamp in record.get("deps", {}).items())

    # --- looking -----------------------------------------------------------------------------
    def files(self, files: Iterable[str | Path]) -> dict[str, FileEntry]:
        """The entry of each file (absolute paths as keys, in the order given); files that
        changed since they were last parsed, or were never parsed, are parsed now."""
        paths = [str(Path(f).resolve()) for f in files]
        records = self._load()
        seen: dict[str, list[int] | None] = {}
        stale = [p for p in paths if p not in records or not self._valid(p, records[p], seen)]
        fresh: dict[str, FileEntry] = {}
        if stale:
            fresh = self._parse(stale)
        return {p: fresh[p] if p in fresh else self._entry(p, records[p]) for p in paths}

    def file(self, path: str | Path) -> FileEntry:
        return next(iter(self.files([path]).values()))

    def folder_view(self, folder: str | Path) -> FolderView:
        from ductwork.loading import flow_files

        return FolderView(self.files(flow_files(folder)))

    def _entry(self, file: str, record: Mapping[str, Any]) -> FileEntry:
        flows = {
            s["flow_id"]: FlowSummary(**{**s, "tags": tuple(s["tags"]), "triggers": tuple(s.get("triggers", ()))})
            for s in record.get("flows", [])
        }
        errors = [FlowImportError(e["file"], e["line"], e["error"], e.get("traceback", "")) for e in record["errors"]]
        return FileEntry(file, flows, errors, self._graph_path(file) if flows else None)

    def _parse(self, files: list[str]) -> dict[str, FileEntry]:
        from ductwork.engine.parse_batch import parse_files

        parsed = parse_files(files, timeout=self.timeout, environ=self.environ, cwd=os.getcwd())
        records = self._load()
        entries = {}
        seen: dict[str, list[int] | None] = {}
        for file, result in parsed.items():
            summaries = [_summary(g, result.lines.get(g["meta"]["flow_id"])) for g in result.graphs]
            record: dict[str, Any] = {
                "stamp": _stamp(file, seen),
                "flows": summaries,
                "errors": result.errors,
                "deps": {dep: _stamp(dep, seen) for dep in [*(result.modules or ()), *result.settings_files]},
            }
            graphs = {g["meta"]["flow_id"]: g for g in result.graphs}
            if graphs:
                self._write_graphs(file, graphs)
            if result.fatal or result.modules is None or result.errors or result.variables:
                # not remembered: tried again next time. An import error may come from outside
                # the file and the modules it loaded (a package installed since, a module that
                # now exists, a variable set since): only a file that loaded is kept. So is a
                # file whose flows are made from variables: their values may have changed.
                records.pop(file, None)
            else:
                records[file] = record
            entries[file] = self._entry(file, record)
            if graphs:
                entries[file].parsed = graphs
        self._save()
        return entries

    def _write_graphs(self, file: str, graphs: Mapping[str, Any]) -> None:
        path = self._graph_path(file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(graphs))
            os.replace(tmp, path)
        except OSError:
            pass

    # --- naming a flow -----------------------------------------------------------------------
    def resolve(self, ref: str, flows_folder: str | Path) -> tuple[FileEntry, str]:
        """The file and flow id named by ``path/to/file.py:flow_id``, ``path/to/file.py`` (its
        only flow) or a flow id of the flows folder; an import error of the file, or a
        ``NotFoundError`` with what there is, otherwise (as ``loading.load_flow`` says them)."""
        from ductwork.loading import flow_in_file, flow_in_folder, names_a_file

        file_part, _, flow_id = ref.partition(":")
        if names_a_file(ref):
            if not Path(file_part).is_file():
                raise NotFoundError(f"flow file {file_part!r} does not exist")
            entry = self.file(file_part)
            return entry, flow_in_file(file_part, flow_id, entry.flows, entry.errors)
        view = self.folder_view(flows_folder)
        flow_in_folder(ref, flows_folder, view.flows, view.errors)
        return view.flows[ref], ref


def _summary(graph: Mapping[str, Any], line: int | None) -> dict[str, Any]:
    meta = graph["meta"]
    return {
        "flow_id": meta["flow_id"],
        "schedule": _schedule_text(meta),
        "tasks": len(graph.get("nodes", ())),
        "style": meta.get("style", "flow"),
        "tags": list(meta.get("tags", ())),
        "owner": meta.get("owner", ""),
        "description": meta.get("description", ""),
        "line": line,
        "triggers": list(meta.get("triggers", ())),
    }


def _schedule_text(meta: Mapping[str, Any]) -> str:
    """What starts the flow's runs, for ``flows list``: its schedule, the assets it waits for,
    the message sources it listens to (they read "None" as a schedule)."""
    parts = [] if str(meta.get("schedule", "None")) in ("None", "") else [str(meta["schedule"])]
    if meta.get("assets"):
        from ductwork.core.assets import condition_from_dict

        parts.append(f"assets: {condition_from_dict(meta['assets']).describe()}")
    parts += [f"on {t.get('kind', 'message')} messages" for t in meta.get("triggers", ())]
    return " + ".join(parts) or "None"
