"""``airflow.models.param``: ``Param`` (a value with a JSON schema) and ``ParamsDict``."""

from __future__ import annotations

from typing import Any

from ductwork.core.params import NO_DEFAULT, SchemaParameter, check_schema


class _Unset:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _Unset()


class Param:
    """A DAG parameter: a default and JSON-schema keywords (``type``, ``enum``, ``minimum``...);
    values given at trigger time are validated against them (the trigger form too)."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any) -> None:
        # Not validated here, as in Airflow: ``Param(None, type="string")`` is a value a manual
        # run must give (the trigger form asks for it), not an error that keeps the DAG out.
        self.value = default
        self.description = description or ""
        self.schema = {k: v for k, v in schema.items()}
        if description:
            self.schema.setdefault("description", description)

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        chosen = self.value if value is NOTSET else value
        if chosen is NOTSET:
            if suppress_exception:
                return None
            from ..exceptions import ParamValidationError

            raise ParamValidationError("No value passed and Param has no default value")
        check_schema(chosen, self.schema)
        return chosen

    def to_parameter(self) -> SchemaParameter:
        """The Ductwork parameter this stands for (run parameter of the flow). A default that
        its own schema refuses makes the parameter one every run must give, as Airflow's
        trigger refuses a run that keeps it (``Invalid input for param``)."""
        default = NO_DEFAULT if self.value is NOTSET else self.value
        if default is not NO_DEFAULT:
            try:
                check_schema(default, self.schema)
            except ValueError:
                default = NO_DEFAULT
        return SchemaParameter(default, schema=self.schema, description=self.description)

    def dump(self) -> dict[str, Any]:
        return {"value": self.value, "description": self.description, "schema": self.schema}

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"


class ParamsDict(dict[str, Any]):
    """A dict of parameters whose values are unwrapped from ``Param`` on read."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return value.value if isinstance(value, Param) else value

    def get_param(self, key: str) -> Any:
        return super().__getitem__(key)

    def validate(self) -> dict[str, Any]:
        return {k: (v.resolve() if isinstance(v, Param) else v) for k, v in self.items()}


__all__ = ["NOTSET", "Param", "ParamsDict"]
