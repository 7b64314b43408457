"""Importing many flow files in one child process, for the CLI (ADR 0001: user code never runs
in the process that asked).

The scheduler parses each file in a process of its own (``engine.parsing``): isolation first,
and it has time. A command line user has not: a hundred files parsed one process each cost a
hundred interpreter start-ups. So the CLI hands a list of files to one child that imports them
in turn and reports each as soon as it is done, over a pipe:

    {"begin": FILE}
    {"file": FILE, "result": {"graphs": [...], "errors": [...], "lines": {...}}}
    ...
    {"modules": [the files of the user modules imported]}

The parent watches. A file that takes longer than ``timeout`` is stopped, with every process
the child started (the child runs in a session of its own and its process group is killed); a
file that ends the interpreter (``os._exit``, a crash) is reported as such. Either way that
file becomes an import error naming it, and a new child goes on with the files after it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL = 0.5
"""Seconds between looks at the clock while a child is silent (it wakes us when it writes)."""


@dataclass
class FileParse:
    """What importing one file gave: graphs and errors as plain data (``FlowGraph.to_dict``)."""

    file: str
    graphs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    modules: list[str] | None = None
    """Files of the user modules loaded in the child while this file's batch ran (the file's
    result stays valid while none of them changes); None when the child could not say."""
    variables: list[str] = field(default_factory=list)
    """The variables its import looked up (its result may change with theirs)."""
    settings_files: list[str] = field(default_factory=list)
    """Settings files its flows' parameter defaults are read from (luigi.cfg), present or not."""
    fatal: bool = False
    """The file stopped or ended the parsing process: nothing of it could be read."""


def _fatal(file: str, message: str, traceback: str = "") -> FileParse:
    return FileParse(file, errors=[{"file": file, "line": None, "error": message, "traceback": traceback}], fatal=True)


def parse_files(
    files: Sequence[str],
    *,
    timeout: float = 60.0,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, FileParse]:
    """Each file's parse, by absolute path; never raises for what a file does."""
    files = [str(Path(f).resolve()) for f in files]
    results: dict[str, FileParse] = {}
    while True:
        pending = [f for f in files if f not in results]
        if not pending:
            return results
        _one_child(pending, timeout, cwd, environ, results)


def _one_child(
    files: list[str],
    timeout: float,
    cwd: str | None,
    environ: Mapping[str, str] | None,
    results: dict[str, FileParse],
) -> None:
    """Run one child on ``files`` until it ends or a file stalls it; every file it began is in
    ``results`` afterwards, and at least one file is (so the caller always makes progress)."""
    reader, writer = os.pipe()
    with tempfile.TemporaryDirectory(prefix="ductwork-parse-") as tmp:
        request = Path(tmp) / "files.json"
        request.write_text(json.dumps(files))
        with open(Path(tmp) / "stderr", "w+b") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.engine.parse_batch", str(request), str(writer)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=cwd,
                env={**(os.environ if environ is None else environ), "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
                pass_fds=(writer,),
            )
            os.close(writer)
            watch = _Watch(proc, reader, timeout)
            try:
                ended = watch.run(results)
            finally:
                watch.stop()
                os.close(reader)
            err.seek(0)
            tail = " | ".join(err.read().decode(errors="replace").strip().splitlines()[-3:])
    for file in watch.reported:
        results[file].modules = watch.modules
    current = watch.current
    if current is None and not watch.reported:
        current = files[0]  # the child died before it began anything: blame the first file, go on
    if current is not None and current not in results:
        detail = f": {tail}" if tail else ""
        if not ended:
            results[current] = _fatal(
                current,
                f"importing it took longer than {timeout:g}s: it was stopped, with the processes it started",
            )
        else:
            results[current] = _fatal(
                current,
                f"importing it ended the parsing process (exit status {proc.returncode}) before it reported "
                f"(does it call os._exit() or crash the interpreter?){detail}",
            )


class _Watch:
    def __init__(self, proc: subprocess.Popen[bytes], reader: int, timeout: float) -> None:
        self.proc = proc
        self.reader = reader
        self.timeout = timeout
        self.buffer = b""
        self.current: str | None = None
        self.reported: list[str] = []
        self.modules: list[str] | None = None
        try:
            self.pidfd: int | None = os.pidfd_open(proc.pid)
        except OSError:  # no pidfd (an old kernel): look at the child between reads
            self.pidfd = None

    def run(self, results: dict[str, FileParse]) -> bool:
        """Read reports until the child exits (True) or a file stalls it (False)."""
        last = time.monotonic()
        while True:
            waiting = [self.reader] + ([self.pidfd] if self.pidfd is not None else [])
            left = last + self.timeout - time.monotonic()
            if left <= 0:
                return False
            ready = select.select(waiting, [], [], min(left, POLL))[0]
            if self.reader in ready:
                chunk = os.read(self.reader, 1 << 20)
                if chunk:
                    if self._take(chunk, results):
                        last = time.monotonic()
                    continue
            if self._exited():
                self._drain(results)
                return True

    def _exited(self) -> bool:
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _drain(self, results: dict[str, FileParse]) -> None:
        while select.select([self.reader], [], [], 0)[0]:
            chunk = os.read(self.reader, 1 << 20)
            if not chunk:
                return
            self._take(chunk, results)

    def _take(self, chunk: bytes, results: dict[str, FileParse]) -> bool:
        """Whether a report was completed."""
        self.buffer += chunk
        progressed = False
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            progressed = True
            if "begin" in message:
                self.current = message["begin"]
            elif "file" in message:
                file, result = message["file"], message["result"]
                if "fatal" in result:
                    results[file] = _fatal(file, result["fatal"], result.get("traceback", ""))
                else:
                    results[file] = FileParse(
                        file,
                        result["graphs"],
                        result["errors"],
                        result.get("lines", {}),
                        variables=result.get("variables") or [],
                        settings_files=result.get("settings_files") or [],
                    )
                self.reported.append(file)
                self.current = None
            elif "modules" in message:
                self.modules = message["modules"]
        return progressed

    def stop(self) -> None:
        """Kill the child's process group (leftovers included), then reap the child."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        if self.pidfd is not None:
            os.close(self.pidfd)


# --- the child --------------------------------------------------------------------------------
def _installed_roots() -> tuple[str, ...]:
    """Where code that is not the user's lives: the interpreter, site-packages, Ductwork."""
    import ductwork

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(ductwork.__file__).parent)}
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's site module may lack them
        pass
    return tuple(str(Path(r).resolve()) + os.sep for r in roots if r)


def user_modules() -> list[str]:
    """Files of the modules loaded in this process that are the user's own code, flow files
    imported as flow files left out (each is its own result's file)."""
    from ductwork.loading import FLOW_MODULE_PREFIX

    roots = _installed_roots()
    found = set()
    for name, module in list(sys.modules.items()):
        if name.startswith(FLOW_MODULE_PREFIX):
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            resolved = str(Path(path).resolve())
            if not resolved.startswith(roots):
                found.add(resolved)
    return sorted(found)


def _send(fd: int, message: Mapping[str, Any]) -> None:
    data = (json.dumps(message, default=str) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def main(argv: list[str]) -> int:
    import traceback

    from ductwork.core.config import ParamSources, use_sources
    from ductwork.engine.parse_child import _parse
    from ductwork.gc_tuning import tune_collector

    tune_collector()  # a flow file of thousands of tasks parses a tenth faster
    request, fd = Path(argv[0]), int(argv[1])
    with use_sources(ParamSources.load()):
        for file in json.loads(request.read_text()):
            _send(fd, {"begin": file})
            try:
                result = _parse(file)
            except Exception as exc:  # Ductwork's own failure, not the file's import (that is in result)
                result = {"fatal": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            _send(fd, {"file": file, "result": result})
    _send(fd, {"modules": user_modules()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
