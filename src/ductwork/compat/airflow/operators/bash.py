"""``airflow.operators.bash.BashOperator``."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Container, Mapping
from typing import Any

from ductwork.core.operators.bash import BashOperator as _Bash
from ductwork.core.signals import SkipTask

from ..models.baseoperator import AirflowOperatorMixin


class BashOperator(AirflowOperatorMixin, _Bash):
    """Runs a bash command; its last line of output is the task's XCom (``do_xcom_push``); exit
    code 99 (``skip_on_exit_code``) skips the task. A command ending in ``.sh``/``.bash`` is a
    template file beside the DAG file (or in the DAG's ``template_searchpath``)."""

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_exit_code: int | None = None,
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        codes = skip_exit_code if skip_exit_code is not None else skip_on_exit_code
        if codes is not None and not isinstance(codes, int):
            codes = tuple(codes)  # type: ignore[arg-type]
        super().__init__(
            bash_command=bash_command,
            env=env,
            append_env=append_env,
            output_encoding=output_encoding,
            skip_on_exit_code=None,
            cwd=cwd,
            **kwargs,
        )
        self.skip_codes: tuple[int, ...] = () if codes is None else ((codes,) if isinstance(codes, int) else codes)
        self.output_processor = output_processor

    def execute(self, context: Any) -> Any:
        from ductwork.errors import TaskExecutionError

        self._context_env = context_env(context)
        cwd = self.cwd
        try:
            with contextlib.ExitStack() as stack:
                if cwd is None:  # as Airflow: a temporary folder of its own, removed afterwards
                    self.cwd = stack.enter_context(tempfile.TemporaryDirectory(prefix="airflowtmp"))
                value = super().execute(context)
        except TaskExecutionError as exc:
            code = _exit_code(str(exc))
            if code is not None and code in self.skip_codes:
                raise SkipTask(f"bash command exited with {code}") from None
            raise
        finally:
            self.cwd = cwd
        return self.output_processor(value) if self.output_processor and value is not None else value

    def _environment(self) -> dict[str, str]:
        """The command's environment with Airflow's ``AIRFLOW_CTX_*`` variables, which Airflow
        adds whatever ``env`` and ``append_env`` say (scripts read the run id and date there)."""
        return {**super()._environment(), **getattr(self, "_context_env", {})}


def context_env(context: Any) -> dict[str, str]:
    """Airflow's ``context_to_airflow_vars(context, in_env_var_format=True)``: the DAG, task,
    logical date, try number, run id, owner and e-mail of the try, those that are set."""
    task = context.get("task")
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    email = getattr(task, "email", None)
    owner = getattr(task, "owner", None)
    logical = context.get("logical_date")
    values = {
        "AIRFLOW_CTX_DAG_EMAIL": ",".join(email) if isinstance(email, list | tuple) else email,
        "AIRFLOW_CTX_DAG_OWNER": ",".join(owner) if isinstance(owner, list | tuple) else owner,
        "AIRFLOW_CTX_DAG_ID": getattr(dag_run, "dag_id", None) or context.get("flow_id"),
        "AIRFLOW_CTX_TASK_ID": _unmapped(getattr(ti, "task_id", None) or context.get("task_id")),
        "AIRFLOW_CTX_EXECUTION_DATE": logical.isoformat() if logical is not None else None,
        "AIRFLOW_CTX_TRY_NUMBER": str(getattr(ti, "try_number", "") or ""),
        "AIRFLOW_CTX_DAG_RUN_ID": context.get("run_id"),
    }
    return {k: str(v) for k, v in values.items() if v}


def _unmapped(task_id: str | None) -> str | None:
    """A mapped instance's task id without its ``[i]``, as Airflow names the task."""
    if task_id and task_id.endswith("]") and "[" in task_id:
        return task_id.rsplit("[", 1)[0]
    return task_id


def _exit_code(message: str) -> int | None:
    marker = "exited with code "
    if marker not in message:
        return None
    try:
        return int(message.rsplit(marker, 1)[1].split()[0])
    except (ValueError, IndexError):
        return None


__all__ = ["BashOperator"]
