"""Evaluating the fields of a pipeline's objects: expressions, references, parameters.

One ``Scope`` answers "what is field F of object O" for one moment of a pipeline's life:

- at compile time (``runtime=None``): only parameters' defaults and plain fields are known, so a
  field that shapes the graph (``maximumRetries``, ``period``) may use ``#{myParam}`` but not
  ``#{@scheduledStartTime}``;
- at validation, with placeholder run values, to find unknown names and bad types without
  running anything;
- in a try, with the run's scheduled times, the try's start and the run's parameter values.

References follow the rules of the developer guide: a bare name is a field of the object (its
own or inherited), else a parameter; ``@name`` is a runtime field; ``node`` is the object that
refers to an action or precondition; ``parent`` is the object itself (the component an instance
belongs to, so ``#{parent.@id}`` is its id); a path goes on through reference fields
(``node.output.directoryPath``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ductwork.declarative.datapipeline import expressions as ex
from ductwork.declarative.datapipeline.model import Definition, PipelineObject, Ref

RUNTIME_FIELDS = (
    "@scheduledStartTime",
    "@scheduledEndTime",
    "@actualStartTime",
    "@actualEndTime",
    "@status",
    "@id",
    "@pipelineId",
    "@sphere",
    "@attemptCount",
    "errorMessage",
    "errorId",
    "errorStackTrace",
    "@failureReason",
)
"""Runtime fields an expression may read; AWS's guide writes the error fields without ``@``."""

_ERROR_FIELDS = frozenset({"errorMessage", "errorId", "errorStackTrace"})


class Scope:
    """Field values of a definition's objects for one moment (see the module docstring)."""

    def __init__(
        self,
        definition: Definition,
        params: Mapping[str, Any],
        runtime: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        pipeline_id: str = "",
    ) -> None:
        self.definition = definition
        self.params = params
        self.runtime = runtime
        """Runtime fields by object id; the key ``""`` holds those shared by every object."""
        self.pipeline_id = pipeline_id
        self._templates: dict[tuple[str, str, int], ex.Template] = {}
        self._effective: dict[str, dict[str, Any]] = {}

    def effective(self, obj: PipelineObject) -> dict[str, Any]:
        cached = self._effective.get(obj.id)
        if cached is None:
            cached = self._effective[obj.id] = self.definition.effective(obj)
        return cached

    def template(self, obj_id: str, name: str, index: int, text: str) -> ex.Template:
        key = (obj_id, name, index)
        cached = self._templates.get(key)
        if cached is None:
            cached = self._templates[key] = ex.parse_template(text)
        return cached

    def value(self, obj: PipelineObject, name: str, *, node: PipelineObject | None = None) -> Any:
        """The field evaluated: a string (or list of strings), a referenced object (or list of
        them), or None when the object has no such field."""
        raw = self.effective(obj).get(name)
        return self._evaluate(obj, name, raw, node, frozenset())

    def text(self, obj: PipelineObject, name: str, *, node: PipelineObject | None = None) -> str | None:
        """A single-valued string field, evaluated."""
        value = self.value(obj, name, node=node)
        if value is None:
            return None
        if isinstance(value, list):
            return " ".join(ex.to_text(v) for v in value)
        return value if isinstance(value, str) else ex.to_text(value)

    def texts(self, obj: PipelineObject, name: str, *, node: PipelineObject | None = None) -> list[str]:
        value = self.value(obj, name, node=node)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        return [v if isinstance(v, str) else ex.to_text(v) for v in items]

    def _evaluate(
        self, obj: PipelineObject, name: str, raw: Any, node: PipelineObject | None, active: frozenset[tuple[str, str]]
    ) -> Any:
        if raw is None:
            return None
        if isinstance(raw, Ref):
            return self.definition.objects.get(raw.target)
        if isinstance(raw, list):
            out: list[Any] = []
            for index, item in enumerate(raw):
                value = self._one(obj, name, index, item, node, active)
                out.extend(value if isinstance(value, list) else [value])
            return out
        return self._one(obj, name, 0, raw, node, active)

    def _one(
        self,
        obj: PipelineObject,
        name: str,
        index: int,
        raw: Any,
        node: PipelineObject | None,
        active: frozenset[tuple[str, str]],
    ) -> Any:
        if isinstance(raw, Ref):
            return self.definition.objects.get(raw.target)
        if "#{" not in raw:
            return raw
        template = self.template(obj.id, name, index, raw)
        inner = active | {(obj.id, name)}

        def resolve(path: tuple[str, ...], pos: int) -> Any:
            return self.resolve(obj, path, pos, node=node, active=inner)

        return ex.render(template, resolve)

    def expression_errors(
        self,
        obj: PipelineObject,
        name: str,
        expr: ex.Expr,
        *,
        node: PipelineObject | None = None,
        evaluate: bool = True,
    ) -> list[ex.ExpressionError]:
        """What is wrong with one expression of a field: every reference that does not resolve
        (each one, not the first alone), else (with ``evaluate``) the error of evaluating it."""
        active = frozenset({(obj.id, name)})

        def resolve(path: tuple[str, ...], pos: int) -> Any:
            return self.resolve(obj, path, pos, node=node, active=active)

        errors: list[ex.ExpressionError] = []
        for part in ex.walk(expr):
            if isinstance(part, ex.Ref):
                try:
                    resolve(part.path, part.pos)
                except ex.ExpressionError as exc:
                    errors.append(exc)
        if evaluate and not errors:
            try:
                ex.evaluate(expr, resolve)
            except ex.ExpressionError as exc:
                errors.append(exc)
        return errors

    def resolve(
        self,
        obj: PipelineObject,
        path: tuple[str, ...],
        pos: int,
        *,
        node: PipelineObject | None,
        active: frozenset[tuple[str, str]] = frozenset(),
    ) -> Any:
        """The value a reference path names, seen from ``obj``."""
        head, rest = path[0], path[1:]
        if head == "node":
            if node is None:
                raise ex.ExpressionError(
                    "'node' is only known in an action or a precondition (it is the object that uses them)", pos
                )
            return self._follow(node, rest, pos, node=None, active=active, label="node")
        if head == "parent" and rest:
            return self._follow(obj, rest, pos, node=node, active=active, label="parent")
        return self._follow(obj, path, pos, node=node, active=active, label=obj.id)

    def _follow(
        self,
        obj: PipelineObject,
        path: tuple[str, ...],
        pos: int,
        *,
        node: PipelineObject | None,
        active: frozenset[tuple[str, str]],
        label: str,
    ) -> Any:
        if not path:
            raise ex.ExpressionError(f"{label!r} names an object, not a value: add a field, e.g. {label}.@id", pos)
        head, rest = path[0], path[1:]
        if head == "@id":
            value: Any = obj.id
        elif head.startswith("@") or head in _ERROR_FIELDS:
            value = self._runtime(obj, head, pos)
        else:
            fields = self.effective(obj)
            if head.startswith("*") and head not in fields and not rest:
                head = head[1:]  # #{*myPassword}: the parameter declared as "*myPassword", held as myPassword
            if head in fields:
                if (obj.id, head) in active:
                    raise ex.ExpressionError(f"field {head!r} of {obj.id!r} refers to itself", pos)
                try:
                    value = self._evaluate(obj, head, fields[head], node, active)
                except ex.ExpressionError as exc:
                    # Said at this reference: the inner position is one of the other field's text.
                    where = f"field {head!r} of {obj.id!r}, position {exc.position + 1}"
                    raise ex.ExpressionError(f"{where}: {exc.message}", pos) from None
            elif not rest and head in self.params:
                value = self.params[head]
                declared = self.definition.parameters.get(head)
                if (
                    value is None
                    and declared is not None
                    and str(declared.attributes.get("optional")).lower() == "true"
                ):
                    return ""  # an optional parameter given no value: empty text, not a failed try
                if value is None:
                    raise ex.ExpressionError(f"parameter {head!r} has no value (give it with --param {head}=...)", pos)
                # An isArray parameter is held as a tuple: as a list, it expands to one value per item.
                return list(value) if isinstance(value, tuple) else value
            elif not rest and head in self.definition.parameters:
                raise ex.ExpressionError(f"parameter {head!r} has no value (give it with --param {head}=...)", pos)
            elif head in self.params or head in self.definition.parameters:
                # #{myBucket.path}: the name is right, the dot is not (it was "'myBucket' is not
                # a field of 'B' nor a parameter. Did you mean 'myBucket'?").
                raise ex.ExpressionError(
                    f"parameter {head!r} is a value, not an object, so it has no field {rest[0]!r}", pos
                )
            else:
                from ductwork.errors import did_you_mean

                known = [*fields, *self.params, *RUNTIME_FIELDS]
                raise ex.ExpressionError(
                    f"{head!r} is not a field of {obj.id!r} nor a parameter.{did_you_mean(head, known)}", pos
                )
        if not rest:
            # A reference field read as a value is the id of the object it names: AWS's own
            # SnsAlarm example writes "Files were copied from #{node.input} to #{node.output}".
            if isinstance(value, PipelineObject):
                return value.id
            if isinstance(value, list) and any(isinstance(v, PipelineObject) for v in value):
                return [v.id if isinstance(v, PipelineObject) else v for v in value]
            return value
        if isinstance(value, PipelineObject):
            return self._follow(value, rest, pos, node=None, active=active, label=value.id)
        raise ex.ExpressionError(f"{head!r} is not a reference, so it has no field {rest[0]!r}", pos)

    def _runtime(self, obj: PipelineObject, name: str, pos: int) -> Any:
        if name == "@pipelineId":
            return self.pipeline_id
        if name == "@sphere":
            return "INSTANCE"
        if name not in RUNTIME_FIELDS:
            from ductwork.errors import did_you_mean

            hint = did_you_mean(name, RUNTIME_FIELDS) or f" Known: {', '.join(RUNTIME_FIELDS)}."
            raise ex.ExpressionError(f"unknown runtime field {name!r}.{hint}", pos)
        if self.runtime is None:
            raise ex.ExpressionError(
                f"{name} is only known while the pipeline runs, and this field is read when it is compiled", pos
            )
        for key in (obj.id, ""):
            fields = self.runtime.get(key)
            if fields is not None and name in fields:
                return fields[name]
        raise ex.ExpressionError(f"{name} of {obj.id!r} is not known at this point of the run", pos)


def placeholder_runtime(start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Any]]:
    """Run values for validation: every runtime field known, with plausible values."""
    return {
        "": {
            "@scheduledStartTime": start,
            "@scheduledEndTime": end,
            "@actualStartTime": start,
            "@actualEndTime": end,
            "@status": "FAILED",
            "@attemptCount": 1,
            "errorMessage": "error",
            "errorId": "Error",
            "errorStackTrace": "error",
            "@failureReason": "error",
        }
    }
