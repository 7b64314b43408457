"""``airflow.sensors.python.PythonSensor``: done when the callable returns a true value."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.python import call_with_context

from .base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
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
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def poke(self, context: TaskContext) -> bool | PokeReturnValue:
        if self.templates_dict is not None:
            context = context.with_values(templates_dict=self.templates_dict)
        value = call_with_context(self.python_callable, self.op_args, self.op_kwargs, context)
        return value if isinstance(value, PokeReturnValue) else bool(value)


__all__ = ["PythonSensor"]
