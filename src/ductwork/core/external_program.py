"""A class task that runs an external program (Luigi's ``ExternalProgramTask``)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from ductwork.core.subprocesses import command_ended, start_command, stop_group
from ductwork.core.task import Task
from ductwork.errors import TaskExecutionError


class ExternalProgramError(TaskExecutionError):
    """The program exited with a non-zero code; keeps the code and what it printed."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args_list = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip().splitlines()[-5:]
        detail = ("; last output: " + " | ".join(tail)) if tail else ""
        super().__init__(f"program {args[0]!r} exited with code {returncode}{detail}")


class ExternalProgramTask(Task):
    """Override ``program_args()`` (and optionally ``program_environment()``).

    The program's stdout and stderr are captured into the task log; a non-zero exit fails the
    task with the exit code and the last lines of output.
    """

    capture_output: bool = True

    def program_args(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement program_args()")

    def program_environment(self) -> dict[str, str]:
        return dict(os.environ)

    def working_directory(self) -> str | None:
        return None

    def run(self) -> Any:
        args = [str(a) for a in self.program_args()]
        if not args:
            raise TaskExecutionError(f"{self.task_id}: program_args() returned no program")
        print(f"running: {' '.join(args)}", flush=True)
        pipe = subprocess.PIPE if self.capture_output else None
        try:
            proc = start_command(
                args,
                stdout=pipe,
                stderr=pipe,
                env=self.program_environment(),
                cwd=self.working_directory(),
            )
        except FileNotFoundError:
            raise TaskExecutionError(f"{self.task_id}: program {args[0]!r} not found") from None
        self._proc = proc
        try:
            out, err = proc.communicate()
        except BaseException:  # interrupted (Ctrl-C, SIGTERM, a timeout): its own session goes too
            stop_group(proc)
            raise
        finally:
            command_ended(proc)
        stdout = (out or b"").decode(errors="replace")
        stderr = (err or b"").decode(errors="replace")
        if stdout:
            print(stdout, end="" if stdout.endswith("\n") else "\n", flush=True)
        if stderr:
            print(stderr, end="" if stderr.endswith("\n") else "\n", flush=True)
        if proc.returncode != 0:
            raise ExternalProgramError(args, proc.returncode, stdout, stderr)
        return stdout.strip().splitlines()[-1] if stdout.strip() else None

    def on_kill(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            stop_group(proc)
