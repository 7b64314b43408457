"""``airflow.sensors.python.PythonSensor``: done when the callable returns a true value."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.python import CallsPython

from .base import BaseSensorOperator, PokeReturnValue


class PythonSensor(CallsPython, BaseSensorOperator):
    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_callable(kwargs.get("task_id"), python_callable, op_args, op_kwargs)
        super().__init__(**kwargs)
        self._keep_callable(python_callable, op_args, op_kwargs, templates_dict)

    def poke(self, context: TaskContext) -> bool | PokeReturnValue:
        value = self._call_python(context)
        return value if isinstance(value, PokeReturnValue) else bool(value)


__all__ = ["PythonSensor"]
