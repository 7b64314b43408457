"""``airflow.hooks.subprocess.SubprocessHook``: run a command, log its output, keep the last line.

Custom operators written for Airflow build on it (``SubprocessHook().run_command(["bash", "-c",
cmd])``, as Airflow's own ``BashOperator`` does) and read ``result.exit_code`` and
``result.output`` (the last line). As in Airflow, the command runs in a temporary folder of its
own unless ``cwd`` is given, and in a process group of its own, which ``send_sigterm()`` (an
operator's ``on_kill``) stops; a try interrupted while the command runs (its timeout, a stop)
stops that group too, so nothing it started outlives the try.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from ductwork.core.subprocesses import stop_group

from .base import BaseHook


class SubprocessResult(NamedTuple):
    """The command's exit code and the last line it wrote (stdout and stderr together)."""

    exit_code: int
    output: str


@contextlib.contextmanager
def working_directory(cwd: str | None = None) -> Iterator[str]:
    """``cwd``, or a temporary folder removed afterwards when it is ``None`` (as Airflow's)."""
    with contextlib.ExitStack() as stack:
        if cwd is None:
            cwd = stack.enter_context(tempfile.TemporaryDirectory(prefix="airflowtmp"))
        yield cwd


class SubprocessHook(BaseHook):
    """Runs one command at a time; ``sub_process`` is the last one started."""

    def __init__(self, logger_name: str | None = None) -> None:
        self.sub_process: subprocess.Popen[bytes] | None = None
        super().__init__(logger_name=logger_name)

    def run_command(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        cwd: str | None = None,
    ) -> SubprocessResult:
        """Run ``command`` (a list, not a shell string) and log each line it writes. ``env``
        replaces the environment when given (even empty), as in Airflow."""
        self.log.info("Tmp dir root location: %s", tempfile.gettempdir())
        with working_directory(cwd=cwd) as folder:
            self.log.info("Running command: %s", list(command))
            self.sub_process = subprocess.Popen(
                list(command),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
            proc = self.sub_process
            assert proc.stdout is not None
            self.log.info("Output:")
            line = ""
            try:
                for raw in iter(proc.stdout.readline, b""):
                    line = raw.decode(output_encoding, errors="backslashreplace").rstrip()
                    self.log.info("%s", line)
                proc.wait()
            except BaseException:  # the try was interrupted: the command's group goes too
                stop_group(proc)
                raise
            finally:
                proc.stdout.close()
            self.log.info("Command exited with return code %s", proc.returncode)
        return SubprocessResult(exit_code=proc.returncode, output=line)

    def send_sigterm(self) -> None:
        """SIGTERM to the command's process group (an operator's ``on_kill``)."""
        self.log.info("Sending SIGTERM signal to process group")
        proc = self.sub_process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(proc.pid), signal.SIGTERM)


__all__ = ["SubprocessHook", "SubprocessResult", "working_directory"]
