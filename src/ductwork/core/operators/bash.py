"""Run a shell command; its output goes to the task log and its last line downstream."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.signals import SkipTask
from ductwork.core.subprocesses import command_ended, start_command, stop_group
from ductwork.errors import DefinitionError, TaskExecutionError


class BashOperator(BaseOperator):
    """Runs ``bash -c bash_command``.

    Args:
        bash_command: the command; a Jinja template (``{{ ds }}``, ``{{ params.x }}``).
        env: the environment of the command; replaces the inherited one unless
            ``append_env`` is true.
        cwd: the working directory.
        push_output: ``"last_line"`` (Airflow's behaviour) or ``"all"`` for the whole of stdout
            as the task's result.
        skip_on_exit_code: an exit code that ends the try as skipped instead of failed.
    """

    template_fields = ("bash_command", "env", "cwd")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        push_output: str = "last_line",
        skip_on_exit_code: int | None = 99,
        output_encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DefinitionError(
                f"BashOperator(task_id={kwargs.get('task_id')!r}): bash_command must be a non-empty string"
            )
        if push_output not in ("last_line", "all"):
            raise DefinitionError(
                f"BashOperator(task_id={kwargs.get('task_id')!r}): push_output must be 'last_line' or 'all'"
            )
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.append_env = append_env
        self.cwd = cwd
        self.push_output = push_output
        self.skip_on_exit_code = skip_on_exit_code
        self.output_encoding = output_encoding
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _environment(self) -> dict[str, str]:
        if self.env is None:
            return dict(os.environ)
        return {**os.environ, **self.env} if self.append_env else dict(self.env)

    def execute(self, context: TaskContext) -> Any:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TaskExecutionError(f"task {self.task_id!r}: working directory {self.cwd!r} does not exist")
        log = context["log"]
        log.info("running: %s", self.bash_command)
        with self._lock:
            self._proc = start_command(
                ["bash", "-c", self.bash_command],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self.cwd,
            )
        lines: list[str] = []  # every line only when all are pushed; else the last one
        keep_all = self.push_output == "all"
        assert self._proc.stdout is not None
        try:
            for raw in self._proc.stdout:
                line = raw.decode(self.output_encoding, errors="replace").rstrip("\n")
                if keep_all or not lines:
                    lines.append(line)
                else:
                    lines[0] = line
                print(line, flush=True)
            code = self._proc.wait()
        except BaseException:  # interrupted (Ctrl-C, SIGTERM, a timeout): its own session goes too
            stop_group(self._proc)
            raise
        finally:
            command_ended(self._proc)
        if self.skip_on_exit_code is not None and code == self.skip_on_exit_code:
            raise SkipTask(f"command exited with {code}")
        if code != 0:
            raise TaskExecutionError(f"bash command exited with code {code}")
        if self.push_output == "all":
            return "\n".join(lines)
        return lines[-1] if lines else None

    def on_kill(self) -> None:
        """Stop the whole process group of the command (it may have started children): SIGTERM,
        then SIGKILL to what ignores it."""
        with self._lock:
            proc = self._proc
        if proc is not None:
            stop_group(proc)

    def extra_spec(self) -> dict[str, Any]:
        return {"bash_command": self.bash_command}
