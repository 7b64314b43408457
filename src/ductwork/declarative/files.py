"""Reading a declarative pipeline file of the flows folder into flows (or import errors)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ductwork.declarative.problems import PipelineDefinitionError, Problem
from ductwork.errors import DuctworkError, FlowImportError

if TYPE_CHECKING:
    from ductwork.core.flow import Flow

DECLARATIVE_SUFFIXES = (".json", ".yaml", ".yml")


def is_declarative(path: str | Path) -> bool:
    return Path(path).suffix.lower() in DECLARATIVE_SUFFIXES


def read_data(text: str, path: str) -> Any:
    """The file's data (JSON, or YAML for .yaml/.yml); syntax errors name the line."""
    if Path(path).suffix.lower() == ".json":
        from ductwork.declarative.datapipeline.model import from_api_form

        try:
            return from_api_form(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PipelineDefinitionError(
                path, [Problem(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", line=exc.lineno)]
            ) from None
    from ductwork.integrations._deps import require

    yaml = require("yaml", extra="declarative", what=f"pipeline file {path}")
    try:
        return yaml.load(text, Loader=_loader(yaml))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineDefinitionError(path, [Problem(f"not valid YAML: {problem}", line=line)]) from None


def compile_file(
    path: str | Path, *, activation_time: dt.datetime | None = None, text: str | None = None
) -> list[Flow]:
    """The flows a declarative file defines; raises ``PipelineDefinitionError``. An AWS
    definition whose schedule starts at FIRST_ACTIVATION_DATE_TIME is read as activated at
    ``activation_time`` (``ductwork pipelines validate`` checks a file as ``put`` would).
    ``text``, when given, is read instead of the file's (its text with parameter objects and
    values merged in, as ``validate --parameters`` checks it)."""
    from ductwork.declarative import datapipeline

    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    source = str(path)
    data = read_data(text, source)
    if isinstance(data, dict) and "objects" in data:
        if path.suffix.lower() == ".json":
            compiled = datapipeline.load_definition(
                text, source=source, flow_id=datapipeline.flow_id_for(path), activation_time=activation_time
            )
        else:
            definition = datapipeline.model.definition_from_data(data, source)
            compiled = datapipeline.compile_definition(
                definition, flow_id=datapipeline.flow_id_for(path), activation_time=activation_time
            )
        compiled.flow.notes = list(compiled.ignored)  # type: ignore[attr-defined]
        flows = [compiled.flow]
    elif isinstance(data, dict) and "tasks" in data:
        from ductwork.declarative.yamlflow.loader import compile_data

        flows = [compile_data(data, source=source, flow_id=datapipeline.flow_id_for(path), text=text)]
    elif isinstance(data, dict) and isinstance(data.get("Resources"), dict):
        pipelines = [
            name
            for name, r in data["Resources"].items()
            if isinstance(r, dict) and r.get("Type") == datapipeline.model.PIPELINE_RESOURCE
        ]
        raise PipelineDefinitionError(
            source,
            [
                Problem(
                    f"a CloudFormation template with {len(pipelines)} {datapipeline.model.PIPELINE_RESOURCE} "
                    f"resources{' (' + ', '.join(pipelines) + ')' if pipelines else ''}: Ductwork reads a template "
                    "with one (and its Properties with PipelineObjects); put each pipeline in its own file"
                )
            ],
        )
    else:
        raise PipelineDefinitionError(
            source,
            [
                Problem(
                    'not a pipeline: expected an AWS Data Pipeline definition (with "objects") or a Ductwork '
                    'pipeline (with "tasks")'
                )
            ],
        )
    for flow in flows:
        flow.fileloc = str(path.resolve())
        flow.defined_at = (str(path.resolve()), 1)
    return flows


def errors_of(exc: PipelineDefinitionError | DuctworkError, path: str) -> list[FlowImportError]:
    """Import errors for the flows-folder view: one per problem, with its line when known."""
    if isinstance(exc, PipelineDefinitionError):
        return [FlowImportError(path, p.line, str(p)) for p in exc.problems]
    return [FlowImportError(path, None, str(exc))]


def load_file(path: str | Path) -> tuple[list[Flow], list[FlowImportError]]:
    """(flows, errors) of a declarative file; never raises for a bad definition."""
    try:
        return compile_file(path), []
    except DuctworkError as exc:
        return [], errors_of(exc, str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [FlowImportError(str(path), None, f"cannot read the file: {exc}")]


_LOADERS: dict[int, Any] = {}


def _loader(yaml: Any) -> Any:
    """PyYAML's safe loader, whose dates that do not exist (``2024-13-01``) are errors at their
    line: its own raises a bare ``ValueError`` from deep in the constructor."""
    loader = _LOADERS.get(id(yaml))
    if loader is None:

        class DatesChecked(yaml.SafeLoader):
            pass

        def timestamp(self: Any, node: Any) -> Any:
            try:
                return yaml.SafeLoader.construct_yaml_timestamp(self, node)
            except ValueError as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{node.value!r} is not a date: {exc}", node.start_mark
                ) from None

        DatesChecked.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
        loader = _LOADERS[id(yaml)] = DatesChecked
    return loader
