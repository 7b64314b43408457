"""``airflow.sensors.bash.BashSensor``: done when the command exits 0."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.errors import TaskExecutionError

from .base import BaseSensorOperator


class BashSensor(BaseSensorOperator):
    """Exit 0: done; ``retry_exit_code`` (if set): poke again; any other code: poke again,
    unless ``retry_exit_code`` is set, then the task fails (Airflow's rule)."""

    template_fields = ("bash_command", "env")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: TaskContext) -> bool:
        proc = subprocess.run(
            ["bash", "-c", self.bash_command],
            capture_output=True,
            env=dict(self.env) if self.env is not None else dict(os.environ),
            check=False,
        )
        for line in proc.stdout.decode(self.output_encoding, "replace").splitlines():
            print(line, flush=True)
        context["log"].info("command exited with %s", proc.returncode)
        if proc.returncode == 0:
            return True
        if self.retry_exit_code is not None and proc.returncode != self.retry_exit_code:
            raise TaskExecutionError(
                f"command exited with {proc.returncode}, not the retry code {self.retry_exit_code}"
            )
        return False


__all__ = ["BashSensor"]
