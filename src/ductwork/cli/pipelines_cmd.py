"""``ductwork pipelines``: declarative pipelines in the shape of ``aws datapipeline``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ductwork.cli.options import RECORD_ID
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.declarative.problems import PipelineDefinitionError


@click.group()
def pipelines() -> None:
    """Declarative pipelines (AWS Data Pipeline definitions, Ductwork YAML), as aws datapipeline
    manages them: validate, put, activate, deactivate, list, describe, list-runs."""


def _parameter_options(command: Any) -> Any:
    """``--parameters``, ``--values`` and ``--param``, as ``aws datapipeline`` takes them with a
    definition (put-pipeline-definition and validate-pipeline-definition alike)."""
    command = click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="A parameter value; an isArray one's items: the name repeated (aws: --parameter-values) or a JSON list.",
    )(command)
    command = click.option(
        "--values",
        "values_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help='Parameter values, {"values": {...}} (aws: --parameter-values-uri).',
    )(command)
    return click.option(
        "--parameters",
        "parameters_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help='Parameter objects, {"parameters": [...]} (aws: --parameter-objects).',
    )(command)


def _with_parameters(
    file: Path, parameters_file: Path | None, values_file: Path | None, params: tuple[str, ...]
) -> tuple[str, str]:
    """The file's text, and that text with the parameter objects and values given merged in."""
    from ductwork.services import pipelines as service

    objects = _json_list(parameters_file, "parameters") if parameters_file else None
    values: dict[str, Any] = dict(_json_dict(values_file, "values")) if values_file else {}
    given: dict[str, Any] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--param")
        key = key.strip()
        if key in given:
            given[key] = [*(given[key] if isinstance(given[key], list) else [given[key]]), value]
        else:
            given[key] = value
    values.update(given)
    original = file.read_text()
    merged = service.with_parameters(original, str(file), parameter_objects=objects, values=values or None)
    listed = _json_lists(merged, str(file), given)
    if listed:
        values.update(listed)
        merged = service.with_parameters(original, str(file), parameter_objects=objects, values=values)
    return original, merged


def _json_lists(merged: str, source: str, given: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``--param`` values written as a JSON list (``myTables=["a", "b"]``) for an isArray
    parameter, as their items: ``run --param`` takes a list so (and says so when a name is
    repeated), but ``put`` stored the list's text as one item. Other parameters keep the text."""
    from ductwork.declarative.datapipeline.model import parse_definition

    wanted = {k: v for k, v in given.items() if isinstance(v, str) and v.lstrip().startswith("[")}
    if not wanted:
        return {}
    try:
        declared = parse_definition(merged, source).parameters
    except PipelineDefinitionError:
        return {}  # validation says what is wrong with it
    out: dict[str, list[Any]] = {}
    for name, text in wanted.items():
        param = declared.get(name.lstrip("*"))
        if param is None or str(param.attributes.get("isArray", "false")).lower() != "true":
            continue
        try:
            items = json.loads(text)
        except ValueError:
            continue
        if isinstance(items, list) and all(isinstance(i, str | int | float) for i in items):
            out[name] = [str(i) for i in items]
    return out


_MERGED = " (given with --parameters, --values or --param)"


def _shared_lines(original: str, merged: str) -> int:
    """How many leading lines the merged text has as the file has them: a problem past those is
    in what was merged in, written in another file or on the command line."""
    same = 0
    for ours, theirs in zip(original.splitlines(), merged.splitlines(), strict=False):
        if ours != theirs:
            break
        same += 1
    return same


def _in_the_file(problems: list[Any], original: str, merged: str) -> list[Any]:
    """``problems`` of the merged text, without the lines the file does not have. Nothing merged
    (no parameters given, or a file that could not be read to merge them in): every problem is
    the file's, though its line is past the last one (a JSON file cut short ends at line N+1,
    and was said to be "given with --parameters")."""
    import dataclasses

    if merged == original:
        return problems
    shared = _shared_lines(original, merged)
    return [
        p if p.line is None or p.line <= shared else dataclasses.replace(p, line=None, message=f"{p.message}{_MERGED}")
        for p in problems
    ]


@pipelines.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_parameter_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def validate(
    state: CliState,
    file: Path,
    parameters_file: Path | None,
    values_file: Path | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check FILE and list every problem at once (object id, field, position); exit 1 if any.
    FILE is checked as ``put`` would store it: a schedule starting at the first activation is
    read as activated now, with the parameter objects and values given as ``put`` takes them
    (aws validate-pipeline-definition's; without them, a definition whose parameters are in
    another file was all 'not a parameter')."""
    import datetime as dt

    from ductwork.declarative.files import compile_file

    if not file.is_file():
        raise click.BadParameter(f"{file} does not exist", param_hint="FILE")
    original = merged = ""
    try:  # merging the parameters in reads the file: a file that is not JSON is a problem listed, exit 1
        original, merged = _with_parameters(file, parameters_file, values_file, params)
        text = merged if merged != original else None
        flows = compile_file(file, activation_time=dt.datetime.now(dt.UTC), text=text)
    except PipelineDefinitionError as exc:
        problems = _in_the_file(exc.problems, original, merged)
        if as_json:
            print_json({"valid": False, "file": str(file), "problems": [p.to_dict() for p in problems]})
        else:
            out = console()
            out.print(f"[red]{escape(str(file))}: {len(problems)} problem(s)[/]")
            for problem in problems:
                line = f"line {problem.line}: " if problem.line else ""
                out.print(f"  {line}{problem}", highlight=False, markup=False)
        sys.exit(1)
    graphs = [f.to_graph() for f in flows]
    if as_json:
        print_json(
            {
                "valid": True,
                "file": str(file),
                "flows": [
                    {
                        "flow_id": g.flow_id,
                        "schedule": _shown_schedule(g.meta.schedule),
                        "tasks": list(g.nodes),
                        "style": g.meta.style,
                    }
                    for g in graphs
                ],
                "ignored": [str(n) for f in flows for n in getattr(f, "notes", [])],
            }
        )
        return
    for flow, g in zip(flows, graphs, strict=True):
        shown = _shown_schedule(g.meta.schedule)
        period = getattr(flow, "period", None)
        if period is not None and period.split()[-1].startswith(("month", "year")):
            shown = f"every {period} ({shown})"  # the cron text alone hides the period written
        click.echo(f"{file}: valid; flow {g.flow_id} ({g.meta.style}), schedule {shown}, {len(g.nodes)} tasks")
    for flow in flows:
        for note in getattr(flow, "notes", []):
            # A field's note says why when there is more to say than the usual "no effect".
            detail = f" ({note.message})" if note.field is None or note.message != _NO_EFFECT else ""
            click.echo(f"  accepted, no effect here: {note.where()}{detail}")
    try:
        compile_file(file, text=text)
    except PipelineDefinitionError as exc:
        # Valid once activated (startAt FIRST_ACTIVATION_DATE_TIME with occurrences), but `run`
        # and the flows folder read it unactivated: said here, not first by a failed import.
        refused = "`ductwork run` and the flows folder refuse it (use `pipelines put` and `activate`)"
        for problem in _in_the_file(exc.problems, original, merged):
            click.echo(f"  {refused}: {problem}")


_NO_EFFECT = "accepted, has no effect in Ductwork"
"""The note of a field accepted only so that AWS definitions load (roles, regions...)."""


def _shown_schedule(schedule: str | None) -> str:
    """A flow's schedule as the pipeline commands show it: an on-demand pipeline's is 'ondemand',
    as AWS's scheduleType says (the flow's own is None)."""
    return "ondemand" if schedule in (None, "", "None") else schedule


@click.command("export")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--format", "fmt", type=click.Choice(["yaml"]), default="yaml", show_default=True, help="File format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_obj
def export(state: CliState, flow_ref: str, fmt: str, output: Path | None) -> None:
    """Write FLOW as a Ductwork pipeline file (its callables must be importable by dotted path)."""
    from ductwork.cli.state import load_checked
    from ductwork.core.config import ParamSources, use_sources
    from ductwork.declarative.yamlflow.export import export_yaml

    with use_sources(ParamSources.load(config_path=state.config_path)):
        # as `run` finds a flow: through the flow index, importing only the flow's own file here
        flow = load_checked(state, flow_ref)
        text = export_yaml(flow, source=str(output or Path(state.settings.flows_folder) / f"{flow.flow_id}.yaml"))
    if output is None:
        click.echo(text, nl=False)
    else:
        from ductwork.cli.output import write_output

        write_output(output, text)
        click.echo(f"wrote {output}")


@pipelines.command("schema")
def schema() -> None:
    """Print the JSON Schema of Ductwork pipeline files (for editors and CI checks)."""
    from ductwork.declarative.yamlflow.schema import build_schema

    print_json(build_schema())


def _engine(state: CliState) -> Any:
    from ductwork.cli.engine_state import store

    return store(state)


@pipelines.command("put")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--name", help="The pipeline's name (default: the file's name, or a YAML file's 'flow').")
@_parameter_options
@click.option("--json", "as_json", is_flag=True, help="Print the stored version as JSON.")
@click.pass_obj
def put(
    state: CliState,
    file: Path,
    name: str | None,
    parameters_file: Path | None,
    values_file: Path | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Validate FILE and store it as the next version of its pipeline (nothing is stored if any
    problem is found). ``activate`` makes it run. Parameter objects and values given here are
    stored with the definition, as ``aws datapipeline put-pipeline-definition`` takes them."""
    from ductwork.services import audit
    from ductwork.services import pipelines as service

    original, text = _with_parameters(file, parameters_file, values_file, params)
    engine = _engine(state)
    try:
        result = service.put(engine, text, filename=str(file), name=name, created_by=audit.cli_actor().name)
    except service.InvalidPipelineError as exc:
        if text == original:
            raise
        raise _outside_the_file(exc, str(file), _shared_lines(original, text)) from None
    version = result.version
    if as_json:
        print_json(
            {
                "name": version.name,
                "version": version.version,
                "format": version.format,
                "created": result.created,
                "tasks": result.tasks,
                "active_version": result.active,
            }
        )
        return
    verb = "stored as" if result.created else "unchanged: already"
    click.echo(
        f"pipeline {version.name}: {verb} version {version.version} ({version.format}, {len(result.tasks)} tasks)"
    )
    if result.active is not None and result.active != version.version:
        # AWS's put changes what an active pipeline runs; here the old version runs until activate.
        click.echo(
            f"  version {result.active} is still the active one: `ductwork pipelines activate {version.name}` "
            f"runs version {version.version}"
        )


def _outside_the_file(exc: Any, source: str, lines: int) -> Exception:
    """``exc`` (an ``InvalidPipelineError`` of a definition with ``--parameters``/``--values``/
    ``--param`` merged in) without the lines past the first ``lines`` (those the merged text
    shares with the file): the merged parameters and values were written elsewhere, so
    'definition.json: line 103' named a line the file does not have. Such a problem says where
    its value may have come from instead."""
    from ductwork.errors import FlowImportError
    from ductwork.services.pipelines import InvalidPipelineError

    errors = [
        e if e.line is None or e.line <= lines else FlowImportError(e.file, None, f"{e.error}{_MERGED}")
        for e in exc.errors
    ]
    return InvalidPipelineError(source, errors)


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not a JSON file: {exc}") from None


def _json_list(path: Path, key: str) -> list[Any]:
    data = _json_file(path)
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise click.BadParameter(f'{path}: expected {{"{key}": [...]}}', param_hint=f"--{key}")
    return items


def _json_dict(path: Path, key: str) -> dict[str, Any]:
    data = _json_file(path)
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, dict):
        raise click.BadParameter(f'{path}: expected {{"{key}": {{...}}}}', param_hint=f"--{key}")
    return items


@pipelines.command("activate")
@click.argument("name")
@click.option("--version", "version", type=RECORD_ID, help="The version to activate (default: the latest).")
@click.option("--allow-backfill", is_flag=True, help="Activate even if the schedule starts more than a day ago.")
@click.pass_obj
def activate(state: CliState, name: str, version: int | None, allow_backfill: bool) -> None:
    """Make NAME run: its latest (or chosen) version is validated again and handed to the
    scheduler; an on-demand pipeline gets a run, a scheduled one resumes its schedule."""
    from ductwork.services import pipelines as service

    activated = service.activate(_engine(state), name, version=version, allow_backfill=allow_backfill)
    if activated is None:
        click.echo(f"pipeline {name}: activated (its file in the flows folder)")
    else:
        click.echo(f"pipeline {name}: version {activated.version} activated")


@pipelines.command("deactivate")
@click.argument("name")
@click.pass_obj
def deactivate(state: CliState, name: str) -> None:
    """Pause NAME: no new runs until it is activated again (runs already going go on)."""
    from ductwork.services import pipelines as service

    service.deactivate(_engine(state), name)
    click.echo(f"pipeline {name}: deactivated")


@pipelines.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_cmd(state: CliState, as_json: bool) -> None:
    """Every pipeline with its schedule state and health, as the AWS console lists them."""
    from ductwork.cli.tables import DataTable
    from ductwork.services import pipelines as service

    summaries = service.list_pipelines(_engine(state))
    if as_json:
        print_json({"pipelines": [s.to_dict() for s in summaries]})
        return
    table = DataTable("name", "schedule state", "schedule", "health", "version", "source")
    for s in summaries:
        shown = _shown_schedule(s.schedule) if s.schedule is not None else "-"
        table.add_row(s.name, s.state, shown, s.health, str(s.version or "-"), s.source)
    console().print(table)


@pipelines.command("describe")
@click.argument("name")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(min=1), help="Instances per object.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def describe(state: CliState, name: str, runs: int, as_json: bool) -> None:
    """A pipeline's state, versions, and each object's latest instances with their attempts."""
    from ductwork.services import pipelines as service

    data = service.describe(_engine(state), name, runs=runs)
    if as_json:
        print_json(data)
        return
    out = console()
    out.print(
        f"[bold]{escape(data['name'])}[/]  {data['schedule_state']}  health {data['health']}  "
        f"schedule {escape(_shown_schedule(data['schedule'])) if data['schedule'] is not None else '-'}"
    )
    for v in data["versions"]:
        mark = "*" if v["active"] else " "
        out.print(
            f" {mark} version {v['version']} ({v['format']}) stored {v['created_at']} by {v['created_by'] or '?'}",
            markup=False,
        )
    for obj in data["objects"]:
        out.print(f"  [bold]{escape(obj['id'])}[/] ({escape(str(obj['type']))})")
        for inst in obj["instances"]:
            out.print(
                f"    {inst['scheduled_start']}  {inst['status']:<24} attempts {inst['attempts']}", highlight=False
            )


@pipelines.command("list-runs")
@click.argument("name")
@click.option("--limit", default=25, show_default=True, type=click.IntRange(min=1), help="Show at most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_runs(state: CliState, name: str, limit: int, as_json: bool) -> None:
    """The runs of NAME, newest first (AWS's list-runs)."""
    from ductwork.cli.tables import DataTable
    from ductwork.services import pipelines as service

    rows = service.list_runs(_engine(state), name, limit=limit)
    if as_json:
        print_json({"runs": rows})
        return
    table = DataTable("scheduled start", "state", "run", "started", "ended")
    for r in rows:
        table.add_row(r["scheduled_start"], r["state"], r["run_id"], r["start"] or "-", r["end"] or "-")
    console().print(table)
