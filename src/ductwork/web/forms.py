"""The trigger form: fields built from a flow's typed parameters, and the posted values back.

Values are passed on as text; the run service converts and checks them with the same
parameter types as the CLI and the API (``core.params.from_description``), so an error names
the parameter and the type it wanted, whichever door the value came through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ductwork.api.schemas import ParamOut
from ductwork.core.json_text import json_object
from ductwork.core.params import schema_hint
from ductwork.errors import ParameterError

_INPUT_TYPES = {
    "int": ("number", "1"),
    "float": ("number", "any"),
    "date": ("date", ""),
    "datetime": ("datetime-local", ""),
    "month": ("month", ""),
}
_TEXTAREA_TYPES = ("list", "dict", "json")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    widget: str
    """``input``, ``checkbox``, ``select`` or ``textarea``."""
    input_type: str = "text"
    step: str = ""
    value: str = ""
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False
    """``null`` gives the parameter None (``int | None``): a number box could not take it."""
    hint: str = ""
    """What the help line says the value is (the type, or an Airflow ``Param``'s schema in words)."""
    minimum: str = ""
    maximum: str = ""


def fields_for(params: list[ParamOut], given: dict[str, str] | None = None) -> list[Field]:
    given = given or {}
    out = []
    for p in params:
        value = given.get(p.name, p.default if p.default is not None else "")
        if p.choices is not None:
            out.append(
                Field(
                    p.name,
                    p.type,
                    "select",
                    value=value,
                    required=p.required,
                    description=p.description,
                    choices=tuple(str(c) for c in p.choices),
                    hint=str((p.json_schema or {}).get("type") or "choice") if p.type == "schema" else "",
                )
            )
        elif p.type == "schema" and not _schema_bool(p):
            out.append(_schema_field(p, value))
        elif p.type == "bool" or _schema_bool(p):
            hint = schema_hint(p.json_schema or {}) if p.type == "schema" else ""
            out.append(Field(p.name, p.type, "checkbox", value=value.lower(), description=p.description, hint=hint))
        elif p.type in _TEXTAREA_TYPES:
            nullable = p.nullable and p.type != "json"  # JSON's null is a JSON value already
            out.append(
                Field(
                    p.name,
                    p.type,
                    "textarea",
                    value=value,
                    required=p.required,
                    description=p.description,
                    nullable=nullable,
                )
            )
        else:
            input_type, step = ("text", "") if p.nullable else _INPUT_TYPES.get(p.type, ("text", ""))
            out.append(
                Field(
                    p.name,
                    p.type,
                    "input",
                    input_type=input_type,
                    step=step,
                    value=value,
                    required=p.required,
                    description=p.description,
                    nullable=p.nullable,
                )
            )
    return out


_SCHEMA_INPUTS = {"integer": "1", "number": "any"}


def _schema_bool(p: ParamOut) -> bool:
    """An Airflow ``Param(False, type="boolean")``: a checkbox, as Airflow's form shows a switch.
    A text box took only ``true`` or ``false`` and refused ``False`` (a Python habit) as "expected
    JSON". One that also takes null (``type=["null", "boolean"]``) stays a text box."""
    return p.type == "schema" and (p.json_schema or {}).get("type") == "boolean" and not p.nullable


def _schema_field(p: ParamOut, value: str) -> Field:
    """The field of an Airflow ``Param``: a number box with its bounds for a number, a JSON box for
    an array or object, text otherwise; its help line says what the schema wants, as Airflow's
    trigger form does, rather than "schema"."""
    schema = p.json_schema or {}
    kind = schema.get("type")
    hint = schema_hint(schema)
    common: dict[str, Any] = {"value": value, "required": p.required, "description": p.description, "hint": hint}
    if kind in ("array", "object"):
        return Field(p.name, p.type, "textarea", **common)
    if isinstance(kind, str) and kind in _SCHEMA_INPUTS and not p.nullable:
        low, high = (schema.get(k) for k in ("minimum", "maximum"))
        return Field(
            p.name,
            p.type,
            "input",
            input_type="number",
            step=_SCHEMA_INPUTS[kind],
            minimum=str(low) if isinstance(low, int | float) else "",
            maximum=str(high) if isinstance(high, int | float) else "",
            **common,
        )
    return Field(p.name, p.type, "input", nullable=p.nullable, **common)


def given_back(params: list[ParamOut], form: dict[str, str]) -> dict[str, str]:
    """The fields' values to show a refused form again with, as they were sent. A checkbox left
    unticked is not sent at all: it came back at its default (ticked, for ``notify=True``), and
    the next submit sent the opposite of what the user had chosen."""
    given = {k.removeprefix("param."): v for k, v in form.items() if k.startswith("param.")}
    for p in params:
        if p.type == "bool" or _schema_bool(p):
            given[p.name] = "true" if form.get(f"param.{p.name}") in ("on", "true", "1") else "false"
    return given


def posted_params(params: list[ParamOut], form: dict[str, str]) -> dict[str, Any]:
    """The run parameters a form post gives: empty optional fields fall back to their default."""
    known = {f"param.{p.name}" for p in params}
    unknown = sorted(k.removeprefix("param.") for k in form if k.startswith("param.") and k not in known)
    if unknown:
        raise ParameterError(
            f"unknown parameter {unknown[0]!r}; the flow's parameters: {sorted(p.name for p in params)}"
        )
    values: dict[str, Any] = {}
    for p in params:
        key = f"param.{p.name}"
        if p.type == "bool" or _schema_bool(p):
            values[p.name] = "true" if form.get(key) in ("on", "true", "1") else "false"
            continue
        text = form.get(key, "")
        if text == "" and not p.required:
            continue
        if p.type in _JSON_WANTED and not (p.nullable and text == "null"):
            _check_json(p.name, p.type, text)
        values[p.name] = text
    return values


_JSON_WANTED = {
    "list": (list, 'a JSON list such as [1, 2] or ["a", "b"]'),
    "dict": (dict, 'a JSON object such as {"key": "value"}'),
}
"""What the text boxes of list and dict parameters take. The CLI reads lists more loosely
(``a,b``); a box that says JSON takes JSON only, so a typo is refused, not stored as ``["typo"]``."""


def _check_json(name: str, type_name: str, text: str) -> None:
    kind, example = _JSON_WANTED[type_name]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(
            f"parameter {name!r} ({type_name}) wants {example}; {text!r} is not valid JSON ({exc})"
        ) from None
    if not isinstance(value, kind):
        raise ParameterError(f"parameter {name!r} ({type_name}) wants {example}, not {text!r}")


def posted_conf(text: str) -> dict[str, Any]:
    """The trigger form's conf box: a JSON object, or nothing when left empty."""
    return json_object(text, "conf", example='{"key": "value"}')
