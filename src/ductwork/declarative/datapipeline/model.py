"""An AWS Data Pipeline definition as data: objects with fields, references, parameters.

The file format is AWS's own (``{"objects": [...], "parameters": [...], "values": {...}}``), read
as it is written by ``aws datapipeline get-pipeline-definition`` and by hand: field values are
strings, ``{"ref": "Id"}`` references or lists of either; a field may be repeated
(``"scriptArgument": "a", "scriptArgument": "b"``, which AWS reads as a list); numbers and
booleans written without quotes are read as their text. Fields are inherited from the object
named by ``parent`` and, at the end of every chain, from the object with id ``Default``.

Nothing here evaluates anything: ``validate`` checks a ``Definition`` and ``compiler`` turns it
into a flow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.declarative.problems import PipelineDefinitionError, Problem

DEFAULT_ID = "Default"


@dataclass(frozen=True)
class Ref:
    """``{"ref": "ObjectId"}``."""

    target: str


FieldValue = str | Ref | list[str | Ref]


@dataclass
class PipelineObject:
    id: str
    fields: dict[str, FieldValue]
    """The object's own fields (without ``id``), as written."""
    line: int | None = None

    @property
    def type(self) -> str | None:
        value = self.fields.get("type")
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str:
        value = self.fields.get("name")
        return value if isinstance(value, str) else self.id


@dataclass
class ParameterObject:
    id: str
    attributes: dict[str, Any]
    line: int | None = None

    @property
    def name(self) -> str:
        """The id without the ``*`` that marks a parameter whose value is masked."""
        return self.id.lstrip("*")

    @property
    def secret(self) -> bool:
        return self.id.startswith("*")


@dataclass
class Definition:
    objects: dict[str, PipelineObject]
    parameters: dict[str, ParameterObject] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    source: str = "<definition>"
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level keys other than objects/parameters/values (Ductwork keeps its own there)."""
    problems: list[Problem] = field(default_factory=list)
    """What was wrong while reading (a duplicate id, an object without one, a value that is not
    a field value): ``compile_definition`` reports them with the rest, so that one look at a
    definition lists every problem. The objects read are the first of each id."""

    def __iter__(self) -> Iterator[PipelineObject]:
        return iter(self.objects.values())

    @property
    def default(self) -> PipelineObject | None:
        return self.objects.get(DEFAULT_ID)

    def is_base(self, obj: PipelineObject) -> bool:
        """An object without a type that is a source of fields only: the Default object, or one
        that another object names as its ``parent`` (AWS's guide shows such an object "A" whose
        fields "B" includes). It is no task of the pipeline."""
        if "type" in obj.fields:
            return False
        if obj.id == DEFAULT_ID:
            return True
        return any(
            isinstance(other.fields.get("parent"), Ref) and other.fields["parent"] == Ref(obj.id) for other in self
        )

    def chain(self, obj: PipelineObject) -> list[PipelineObject]:
        """The object, its parents, then ``Default``: where its fields come from, nearest first.
        Stops at a cycle or a missing parent (validation reports those)."""
        chain = [obj]
        seen = {obj.id}
        current = obj
        while True:
            parent = current.fields.get("parent")
            if isinstance(parent, Ref) and parent.target in self.objects and parent.target not in seen:
                current = self.objects[parent.target]
                chain.append(current)
                seen.add(current.id)
                continue
            break
        default = self.default
        if default is not None and default.id not in seen:
            chain.append(default)
        return chain

    def effective(self, obj: PipelineObject) -> dict[str, FieldValue]:
        """The object's fields with inherited ones filled in (nearest definition wins)."""
        merged: dict[str, FieldValue] = {}
        for source in reversed(self.chain(obj)):
            merged.update(source.fields)
        merged.pop("parent", None)
        merged["type"] = obj.fields.get("type", "")
        if "name" in obj.fields:
            merged["name"] = obj.fields["name"]
        else:
            merged["name"] = obj.id
        return merged

    def field_origin(self, obj: PipelineObject, name: str) -> PipelineObject:
        """The object in the chain that defines ``name`` (for error messages)."""
        for source in self.chain(obj):
            if name in source.fields:
                return source
        return obj


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects keep repeated keys as a list, the way AWS reads ``"scriptArgument"`` twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            existing = out[key]
            merged = existing if isinstance(existing, _Repeated) else _Repeated([existing])
            merged.append(value)
            out[key] = merged
        else:
            out[key] = value
    return out


_API_FORMS = (
    # (objects, fields, key, text, reference, parameters, attributes, values, id, name)
    ("pipelineObjects", "fields", "key", "stringValue", "refValue", "parameterObjects", "attributes",
     "parameterValues", "id", "name"),
    ("PipelineObjects", "Fields", "Key", "StringValue", "RefValue", "ParameterObjects", "Attributes",
     "ParameterValues", "Id", "Name"),
)  # fmt: skip


def from_api_form(data: Any) -> Any:
    """A definition as the API takes and gives it (boto3's ``get_pipeline_definition``:
    ``pipelineObjects`` whose ``fields`` are ``key`` with ``stringValue`` or ``refValue``) or as
    CloudFormation's ``AWS::DataPipeline::Pipeline`` writes it (``PipelineObjects``, ``Fields``,
    ``Key``, ``StringValue``, ``RefValue``), in the ``objects`` form the rest reads; any other data
    as it is. Those were refused as "not a pipeline", though they are the same definitions."""
    if not isinstance(data, dict) or "objects" in data:
        return data
    added = {k: data[k] for k in _ADDED_KEYS if k in data}
    data = _template_pipeline(data)
    for objects_key, fields_key, key, text, ref, params_key, attrs_key, values_key, id_key, name_key in _API_FORMS:
        if not isinstance(data.get(objects_key), list):
            continue
        out: dict[str, Any] = {k: v for k, v in data.items() if k not in (objects_key, params_key, values_key)}
        out["objects"] = [_from_api_object(o, fields_key, key, text, ref, id_key, name_key) for o in data[objects_key]]
        if isinstance(data.get(params_key), list):
            out["parameters"] = [_from_api_object(o, attrs_key, key, text, ref, id_key, None) for o in data[params_key]]
        if isinstance(data.get(values_key), list):
            given: dict[str, list[Any]] = {}
            for item in data[values_key]:
                if isinstance(item, dict) and id_key in item:
                    given.setdefault(str(item[id_key]), []).append(item.get(text))
            # A parameter given several values (isArray) is its id repeated.
            out["values"] = {name: items[0] if len(items) == 1 else items for name, items in given.items()}
        return _with_added(out, added)
    return data


_ADDED_KEYS = ("parameters", "values", "ductwork")
"""Keys Ductwork adds at the top of a stored definition's text, whatever its form: the parameter
objects and values of ``pipelines put --parameters/--values/--param`` (``services.pipelines.
with_parameters``) and the scheduler's name, version and activation time (``materialized``)."""


def _with_added(out: dict[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """``out`` (a definition read from the API's or CloudFormation's form) with the keys put and
    the scheduler add beside that form. A template's reader took its Properties alone, so a
    stored template lost them: ``--param`` values were silently not used, and without its
    version the scheduler never started an on-demand activation's run. As ``with_parameters``
    merges: a parameter object replaces the form's of the same id, a value the form's value."""
    if "ductwork" in added:
        out["ductwork"] = added["ductwork"]
    declared = added.get("parameters")
    if isinstance(declared, list):
        ids = {str(p.get("id", "")).lstrip("*") for p in declared if isinstance(p, dict)}
        own: list[Any] = out["parameters"] if isinstance(out.get("parameters"), list) else []
        kept = [p for p in own if not (isinstance(p, dict) and str(p.get("id", "")).lstrip("*") in ids)]
        out["parameters"] = [*kept, *declared]
    values = added.get("values")
    if isinstance(values, dict):
        own_values: dict[str, Any] = out["values"] if isinstance(out.get("values"), dict) else {}
        out["values"] = {**own_values, **values}
    return out


PIPELINE_RESOURCE = "AWS::DataPipeline::Pipeline"


def _template_pipeline(data: dict[str, Any]) -> dict[str, Any]:
    """The ``Properties`` of the one ``AWS::DataPipeline::Pipeline`` of a whole CloudFormation
    template (``Resources``), which is the file a CloudFormation user has; it was refused as
    "not a pipeline" unless cut down to the Properties by hand. Anything else as it is (a
    template with several pipelines is named as such by ``files.compile_file``)."""
    resources = data.get("Resources")
    if "PipelineObjects" in data or not isinstance(resources, dict):
        return data
    found = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == PIPELINE_RESOURCE]
    if len(found) == 1 and isinstance(found[0].get("Properties"), dict):
        return dict(found[0]["Properties"])
    return data


def _from_api_object(
    obj: Any, fields_key: str, key: str, text: str, ref: str, id_key: str, name_key: str | None
) -> Any:
    if not isinstance(obj, dict):
        return obj
    pairs: list[tuple[str, Any]] = [("id", obj.get(id_key))]
    if name_key is not None and name_key in obj:
        pairs.append(("name", obj[name_key]))
    for item in obj.get(fields_key) or []:
        if isinstance(item, dict) and key in item:
            value = {"ref": item[ref]} if ref in item else item.get(text)
            pairs.append((str(item[key]), value))
    return _pairs(pairs)  # a key given twice is a repeated field, as in the objects form


class _Repeated(list[Any]):
    """A field given more than once in one object."""


def _field_value(value: Any, obj_id: str, name: str, problems: list[Problem], line: int | None) -> FieldValue | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if set(value) == {"ref"} and isinstance(value["ref"], str):
            return Ref(value["ref"])
        problems.append(Problem('an object value must be a reference {"ref": "ObjectId"}', obj_id, name, line=line))
        return None
    if isinstance(value, list):
        items: list[str | Ref] = []
        for item in value:
            converted = _field_value(item, obj_id, name, problems, line)
            if isinstance(converted, list):
                items.extend(converted)
            elif converted is not None:
                items.append(converted)
        return items
    if value is None:
        # JSON's null read as Python's: "unsupported value None" named neither what was written
        # nor what to write.
        problems.append(
            Problem("null is not a field value: write a string, or leave the field out", obj_id, name, line=line)
        )
        return None
    problems.append(Problem(f"unsupported value {value!r}", obj_id, name, line=line))
    return None


def _id_lines(text: str) -> dict[str, list[int]]:
    """The lines of each ``"id": "..."`` in the text, in order, for error messages."""
    lines: dict[str, list[int]] = {}
    # "Id": the API's and CloudFormation's forms (PipelineObjects), whose problems had no line.
    for match in re.finditer(r'"(?:id|Id)"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
        try:
            ident = json.loads(f'"{match.group(1)}"')
        except json.JSONDecodeError:
            continue
        lines.setdefault(ident, []).append(text.count("\n", 0, match.start()) + 1)
    return lines


def _element_lines(text: str) -> dict[str, list[int]]:
    """The line where each item of the top-level ``objects`` and ``parameters`` lists starts
    (also the API's ``pipelineObjects``/``parameterObjects``), for the problems of an item that
    has no id to find it by: "objects[3]: every object needs a non-empty string 'id'" had no line.
    Items are found with the JSON decoder itself, so strings holding brackets do not mislead."""
    decoder = json.JSONDecoder()
    found: dict[str, list[int]] = {}
    keys = {
        "objects": "objects",
        "pipelineObjects": "objects",
        "parameters": "parameters",
        "parameterObjects": "parameters",
    }
    for match in re.finditer(r'"(objects|pipelineObjects|parameters|parameterObjects)"\s*:\s*\[', text):
        if keys[match.group(1)] in found:
            continue
        lines: list[int] = []
        pos = match.end()
        try:
            while True:
                while pos < len(text) and text[pos] in " \t\r\n,":
                    pos += 1
                if pos >= len(text) or text[pos] == "]":
                    break
                lines.append(text.count("\n", 0, pos) + 1)
                _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            continue
        found[keys[match.group(1)]] = lines
    return found


def parse_definition(text: str, source: str = "<definition>") -> Definition:
    """Read a definition's JSON text; raises ``PipelineDefinitionError`` when it cannot be read
    at all (bad JSON with line and column, no "objects" list). Lesser problems (objects without
    id, duplicates) are kept in ``Definition.problems`` for validation to report with the rest."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise PipelineDefinitionError(
            source, [Problem(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", line=exc.lineno)]
        ) from None
    return definition_from_data(data, source, _id_lines(text), _element_lines(text))


def definition_from_data(
    data: Any,
    source: str,
    all_lines: Mapping[str, list[int]] | None = None,
    item_lines: Mapping[str, list[int]] | None = None,
) -> Definition:
    data = from_api_form(data)
    all_lines = all_lines or {}
    item_lines = item_lines or {}

    def item_line(kind: str, index: int) -> int | None:
        found = item_lines.get(kind, [])
        return found[index] if index < len(found) else None

    lines = {ident: found[0] for ident, found in all_lines.items()}
    problems: list[Problem] = []
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise PipelineDefinitionError(
            source, [Problem('a pipeline definition is a JSON object with an "objects" list')]
        )
    objects: dict[str, PipelineObject] = {}
    repeats: dict[str, int] = {}
    for index, raw in enumerate(data["objects"]):
        if not isinstance(raw, dict):
            problems.append(Problem(f"objects[{index}] is not a JSON object", line=item_line("objects", index)))
            continue
        ident = raw.get("id")
        if not isinstance(ident, str) or not ident.strip():
            label = raw.get("name") if isinstance(raw.get("name"), str) else f"objects[{index}]"
            problems.append(
                Problem(
                    f"{label}: every object needs a non-empty string 'id'", field="id", line=item_line("objects", index)
                )
            )
            continue
        line = lines.get(ident)
        if ident in objects:
            found = all_lines.get(ident, [])
            repeats[ident] = repeats.get(ident, 0) + 1
            again = found[repeats[ident]] if repeats[ident] < len(found) else line  # this one, not the first
            first = f" (the first is at line {line})" if line is not None and again != line else ""
            problems.append(Problem(f"duplicate object id{first}", ident, "id", line=again))
            continue
        fields: dict[str, FieldValue] = {}
        for key, value in raw.items():
            if key == "id":
                continue
            if isinstance(value, _Repeated):
                value = list(value)
            converted = _field_value(value, ident, key, problems, line)
            if converted is not None:
                fields[key] = converted
        if ident == DEFAULT_ID and fields.get("type") == DEFAULT_ID:
            # AWS's CloudFormation examples write the Default object with "type": "Default";
            # it is the same object as without (fields for every other object), not a task.
            del fields["type"]
        objects[ident] = PipelineObject(ident, fields, line)
    parameters: dict[str, ParameterObject] = {}
    raw_params = data.get("parameters", [])
    if not isinstance(raw_params, list):
        problems.append(Problem('"parameters" must be a list of parameter objects', field="parameters"))
        raw_params = []
    for index, raw in enumerate(raw_params):
        ident = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(ident, str) or not ident.strip():
            problems.append(
                Problem(
                    f"parameters[{index}] needs a string 'id'", field="parameters", line=item_line("parameters", index)
                )
            )
            continue
        assert isinstance(raw, dict)
        param = ParameterObject(ident, {k: v for k, v in raw.items() if k != "id"}, lines.get(ident))
        if param.name in parameters:
            problems.append(Problem("duplicate parameter id", param.name, "id", line=param.line))
            continue
        parameters[param.name] = param
    values = data.get("values", {})
    if not isinstance(values, dict):
        problems.append(Problem('"values" must be an object of parameter values', field="values"))
        values = {}
    extra = {k: v for k, v in data.items() if k not in ("objects", "parameters", "values")}
    values = {k.lstrip("*"): v for k, v in values.items()}
    return Definition(objects, parameters, values, source, extra, problems)
