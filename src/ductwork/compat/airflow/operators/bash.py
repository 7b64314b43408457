"""``airflow.operators.bash.BashOperator``."""

from __future__ import annotations

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

        try:
            value = super().execute(context)
        except TaskExecutionError as exc:
            code = _exit_code(str(exc))
            if code is not None and code in self.skip_codes:
                raise SkipTask(f"bash command exited with {code}") from None
            raise
        return self.output_processor(value) if self.output_processor and value is not None else value


def _exit_code(message: str) -> int | None:
    marker = "exited with code "
    if marker not in message:
        return None
    try:
        return int(message.rsplit(marker, 1)[1].split()[0])
    except (ValueError, IndexError):
        return None


__all__ = ["BashOperator"]
