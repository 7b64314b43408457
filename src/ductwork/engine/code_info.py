"""The code a flow runs: a content hash of its file and of the modules its callables come from,
and the git commit when those files are in a git repository.

A flow's graph hash (``FlowGraph.version_hash``) changes when the graph changes, not when the
body of a callable does; this is what tells two runs of the same graph apart when the code
behind it changed. It is computed where the flow's code is imported (the parsing process, an
in-process run) and recorded with the flow, then with each run created from it.

Which files: the flow's own file, and every module that defines one of its operators' classes,
a callable an operator holds (``python_callable``, a decorated function, callbacks) or a class
task of the graph, except the standard library, installed packages and Ductwork itself.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

HASH_CHARS = 16
_PLAIN = frozenset({str, int, float, bool, type(None), dict})
"""Values that are never code (a subclass of one could be callable: it is looked at)."""
_GIT_TIMEOUT = 5.0


def _installed_roots() -> tuple[Path, ...]:
    """Where the interpreter's own and installed modules live (not the user's code)."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    import ductwork

    roots.add(str(Path(ductwork.__file__).parent))
    return tuple(Path(r).resolve() for r in roots if r)


def _module_names(flow: Any, graph: Any = None) -> set[str]:
    names: set[str] = set()

    def note(obj: Any) -> None:
        module = getattr(obj, "__module__", None)
        if isinstance(module, str):
            names.add(module)

    for op in getattr(flow, "tasks", {}).values():
        note(type(op))
        for value in vars(op).values():
            if type(value) in _PLAIN:  # most of an operator's attributes: no code behind them
                continue
            if callable(value):
                note(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if type(item) not in _PLAIN and callable(item):
                        note(item)
    for value in vars(flow).values():
        if callable(value):
            note(value)
    if graph is None:
        try:
            graph = flow.to_graph()
        except Exception:  # a flow that cannot build its graph is reported by the parser, not here
            graph = None
    if graph is not None:
        for node in graph.nodes.values():
            if node.module:
                names.add(node.module)
    return names


def _user_files(modules: Iterable[str], roots: tuple[Path, ...]) -> set[Path]:
    files: set[Path] = set()
    for name in modules:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if not location or not str(location).endswith(".py"):
            continue
        path = Path(location).resolve()
        if any(path.is_relative_to(root) for root in roots):
            continue
        files.add(path)
    return files


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_CHARS]


def combined_hash(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()[:HASH_CHARS]


def _name(path: Path, base: Path | None) -> str:
    if base is not None and path.is_relative_to(base):
        return str(path.relative_to(base))
    return str(path)


def git_commit(paths: Iterable[Path], *, heads: dict[Path, str | None] | None = None) -> dict[str, Any] | None:
    """The commit checked out where the files are, and whether any of them differs from it;
    None when they are not in a git repository (or git is not installed).

    ``heads`` remembers each folder's checked-out commit (or that it is in no repository) for
    callers that ask for many flows at once, such as a parse of a whole flows folder: one ``git``
    process per folder instead of one per flow."""
    paths = sorted(paths)
    if not paths:
        return None
    where = paths[0].parent
    try:
        if heads is not None and where in heads:
            commit = heads[where]
        else:
            head = subprocess.run(
                ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=_GIT_TIMEOUT
            )
            commit = head.stdout.strip() if head.returncode == 0 else None
            if heads is not None:
                heads[where] = commit
        if commit is None:
            return None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def code_files(flow: Any, graph: Any = None) -> set[Path]:
    """The files ``flow``'s code comes from: its own file and the user modules its callables,
    operators and class tasks are defined in (absolute paths). ``graph``: the flow's graph when
    the caller has it (``flow.to_graph()`` otherwise)."""
    files = _user_files(_module_names(flow, graph), _installed_roots())
    fileloc = getattr(flow, "fileloc", None)
    if fileloc and Path(fileloc).is_file():
        files.add(Path(fileloc).resolve())
    return files


def flow_code(
    flow: Any,
    *,
    base: Path | None = None,
    git: bool = True,
    git_heads: dict[Path, str | None] | None = None,
    graph: Any = None,
) -> dict[str, Any]:
    """``{"hash": ..., "files": {name: hash}, "git": {"commit", "dirty"} | None}`` for ``flow``.
    File names are relative to ``base`` (the flows folder) when they are inside it."""
    files = code_files(flow, graph)
    fileloc = getattr(flow, "fileloc", None)
    base = base.resolve() if base is not None else (Path(fileloc).resolve().parent if fileloc else None)
    hashes: dict[str, str] = {}
    for path in files:
        try:
            hashes[_name(path, base)] = file_hash(path)
        except OSError:
            continue
    return {"hash": combined_hash(hashes), "files": hashes, "git": git_commit(files, heads=git_heads) if git else None}


def as_on_disk(code: Mapping[str, Any], fileloc: str) -> dict[str, Any] | None:
    """``code`` (as ``flow_code`` recorded it) with the hashes of its files as they are now, or
    None when they are unchanged or cannot all be read here (another host's files). What a run
    queued right after an edit records, before the scheduler parses the file again; the git
    state is looked up again only when a file changed."""
    files = code.get("files")
    own = Path(fileloc)
    if not isinstance(files, Mapping) or not files or not own.is_file():
        return None
    own = own.resolve()
    relative = [n for n in files if not Path(n).is_absolute() and str(own).endswith(os.sep + n)]
    base = Path(str(own)[: -len(relative[0]) - 1]) if relative else None
    paths: dict[str, Path] = {}
    for name in files:
        if Path(name).is_absolute():
            paths[name] = Path(name)
        elif base is not None:
            paths[name] = base / name
        else:
            return None
    try:
        hashes = {name: file_hash(path) for name, path in paths.items()}
    except OSError:
        return None
    if hashes == dict(files):
        return None
    git = git_commit(paths.values()) if code.get("git") else None
    return {**code, "files": hashes, "hash": combined_hash(hashes), "git": git}
