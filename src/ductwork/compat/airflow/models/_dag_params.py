"""``dag.params`` of an Airflow DAG: read like Airflow's ``ParamsDict``, kept as Ductwork's
declared parameters.

A DAG file writes ``f"deploy {dag.params['env']}"`` or ``if dag.params.get("debug"):`` and
expects the value; Ductwork (the flow, the run's parameter checks, the trigger form) reads the
same attribute's ``.items()`` and ``.values()`` as ``Parameter`` objects. Items read with ``[]``
or ``.get()`` are the defaults, as in Airflow; ``get_param`` gives the parameter itself.
"""

from __future__ import annotations

from typing import Any

from ductwork.core.params import NO_DEFAULT, Parameter, SchemaParameter, parameter_for


class DagParams(dict[str, Parameter[Any]]):
    """The DAG's parameters by name; an item read is its default value (``None`` when it has
    none), as Airflow's ``dag.params[name]``."""

    def __getitem__(self, key: str) -> Any:
        default = super().__getitem__(key).default
        return None if default is NO_DEFAULT else default

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        return self[key]

    def get_param(self, key: str) -> Parameter[Any]:
        """The declared parameter (Airflow's ``ParamsDict.get_param`` gives the ``Param``)."""
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        """``dag.params["limit"] = 10`` declares it with that default, as Airflow's does."""
        super().__setitem__(key, value if isinstance(value, Parameter) else as_parameter(key, value))


def as_parameter(name: str, value: Any) -> Parameter[Any]:
    """A DAG ``params`` entry (a ``Param`` or a plain value) as a Ductwork parameter."""
    to_param = getattr(value, "to_parameter", None)
    if callable(to_param):
        param: Parameter[Any] = to_param()
    elif isinstance(value, Parameter):
        param = value
    elif isinstance(value, list | dict) or value is None:
        param = SchemaParameter(value, schema={})
    else:
        param = parameter_for(None, value)
    param.name = name
    return param


__all__ = ["DagParams", "as_parameter"]
