"""``ductwork pipelines``: declarative pipelines in the shape of ``aws datapipeline``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.declarative.problems import PipelineDefinitionError


@click.group()
def pipelines() -> None:
    """Declarative pipelines (AWS Data Pipeline definitions, Ductwork YAML): validate them."""


@pipelines.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def validate(state: CliState, file: Path, as_json: bool) -> None:
    """Check FILE and list every problem at once (object id, field, position); exit 1 if any."""
    from ductwork.declarative.files import compile_file

    if not file.is_file():
        raise click.BadParameter(f"{file} does not exist", param_hint="FILE")
    try:
        flows = compile_file(file)
    except PipelineDefinitionError as exc:
        if as_json:
            print_json({"valid": False, "file": str(file), "problems": [p.to_dict() for p in exc.problems]})
        else:
            out = console()
            out.print(f"[red]{file}: {len(exc.problems)} problem(s)[/]")
            for problem in exc.problems:
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
                    {"flow_id": g.flow_id, "schedule": g.meta.schedule, "tasks": list(g.nodes), "style": g.meta.style}
                    for g in graphs
                ],
            }
        )
        return
    for g in graphs:
        click.echo(
            f"{file}: valid; flow {g.flow_id} ({g.meta.style}), schedule {g.meta.schedule}, {len(g.nodes)} tasks"
        )


@click.command("export")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--format", "fmt", type=click.Choice(["yaml"]), default="yaml", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_obj
def export(state: CliState, flow_ref: str, fmt: str, output: Path | None) -> None:
    """Write FLOW as a Ductwork pipeline file (its callables must be importable by dotted path)."""
    from ductwork.core.config import ParamSources, use_sources
    from ductwork.declarative.yamlflow.export import export_yaml
    from ductwork.loading import load_flow

    with use_sources(ParamSources.load(config_path=state.config_path)):
        flow = load_flow(flow_ref, state.settings.flows_folder)
        text = export_yaml(flow, source=str(output or Path(state.settings.flows_folder) / f"{flow.flow_id}.yaml"))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


@pipelines.command("schema")
def schema() -> None:
    """Print the JSON Schema of Ductwork pipeline files (for editors and CI checks)."""
    from ductwork.declarative.yamlflow.schema import build_schema

    print_json(build_schema())
