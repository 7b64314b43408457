"""``ductwork flows``: list, show and draw the flows of the flows folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ductwork.cli.output import console, print_json, write_output
from ductwork.cli.state import CliState
from ductwork.errors import ParameterError

if TYPE_CHECKING:
    from rich.tree import Tree

    from ductwork.core.graph import FlowGraph


@click.group()
def flows() -> None:
    """Inspect flows: list them, show one as a tree, draw its graph."""


@flows.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_flows(state: CliState, as_json: bool) -> None:
    """Every flow in the flows folder, and the files that failed to load.

    Files are imported in a child process, and only when they changed since the last look."""
    from ductwork.cli.flow_index import shown_path

    folder = state.settings.flows_folder
    if not folder.is_dir():  # a typo would otherwise look like "no flows"
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        click.secho(
            f"warning: the flows folder {folder} {what} (set flows_folder, DUCTWORK_FLOWS_FOLDER or --flows-folder)",
            fg="yellow",
            err=True,
        )
    view = state.flow_index.folder_view(folder)
    rows = sorted((fid, entry.flows[fid], shown_path(entry.file)) for fid, entry in view.flows.items())
    shared = [s.describe() for s in view.shared_triggers()]
    if as_json:
        print_json(
            {
                "flows": [
                    {
                        "flow_id": fid,
                        "schedule": flow.schedule,
                        "tasks": flow.tasks,
                        "style": flow.style,
                        "tags": list(flow.tags),
                        "owner": flow.owner,
                        "file": file,
                        "description": flow.description,
                    }
                    for fid, flow, file in rows
                ],
                "errors": [{"file": shown_path(e.file), "line": e.line, "error": e.error} for e in view.errors],
                "warnings": shared,
            }
        )
        if view.errors:
            sys.exit(1)
        return
    from rich.markup import escape

    from ductwork.cli.tables import DataTable

    out = console()
    table = DataTable("flow", "schedule", "tasks", "style", "tags", "file", title=f"flows in {folder}")
    for fid, flow, file in rows:
        table.add_row(fid, flow.schedule, str(flow.tasks), flow.style, ", ".join(flow.tags), file)
    out.print(table)
    _warn_shared(shared)
    for err in view.errors:  # one line each, however long: what grep and a log file read
        out.print("[red]import error[/] " + escape(str(err)), soft_wrap=True)
    if view.errors:
        sys.exit(1)


def _graph(state: CliState, flow_ref: str) -> FlowGraph:
    """A flow's graph, from its file as it is now (parsed in a child process when it changed)."""
    entry, flow_id = state.flow_index.resolve(flow_ref, state.settings.flows_folder)
    graph: FlowGraph = entry.graph(flow_id)
    return graph


def _tree(graph: FlowGraph) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    meta = graph.meta
    root = Tree(f"[bold]{meta.flow_id}[/]  schedule={meta.schedule}  tasks={len(graph.nodes)}")
    down = graph.downstream_map()
    shown: set[str] = set()

    def add(parent: Tree, task_id: str) -> None:
        node = graph.nodes[task_id]
        label = f"{escape(task_id)} [dim]({escape(node.operator)}"
        if node.trigger_rule.value != "all_success":
            label += f", {node.trigger_rule.value}"
        label += ")[/]"
        if task_id in shown:
            parent.add(f"{escape(task_id)} [dim](see above)[/]")
            return
        shown.add(task_id)
        branch = parent.add(label)
        for child in down[task_id]:
            add(branch, child)

    for task_id in graph.roots():
        add(root, task_id)
    return root


@flows.command("show")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--json", "as_json", is_flag=True, help="Print the serialized graph as JSON.")
@click.pass_obj
def show(state: CliState, flow_ref: str, as_json: bool) -> None:
    """A flow's tasks and edges as a tree (roots first; repeated nodes marked)."""
    graph = _graph(state, flow_ref)
    if as_json:
        print_json(graph.to_dict())
        return
    out = console()
    out.print(_tree(graph))
    meta = graph.meta
    for line in _trigger_lines(graph.flow_id, meta.triggers):
        out.print(line, markup=False, highlight=False)
    if meta.triggers:
        view = state.flow_index.folder_view(state.settings.flows_folder)
        _warn_shared([s.describe() for s in view.shared_triggers() if graph.flow_id in s.flow_ids])
    if meta.params:
        from ductwork.cli.tables import DataTable
        from ductwork.core.params import from_description, schema_hint

        table = DataTable("parameter", "type", "default", "description", title="parameters")
        for name, info in meta.params.items():
            nullable = info["type"] != "json" and from_description(info).takes_null()
            kind = f"list of {info['items']}" if info.get("items") else info["type"]
            if info["type"] == "schema":  # an Airflow Param: what its JSON schema wants, as the trigger form says
                schema = info.get("schema") or {}
                kind = schema_hint(schema)
                listed = schema.get("type")
                nullable = nullable and not (isinstance(listed, list) and "null" in listed)
            table.add_row(
                name,
                f"{kind} or null" if nullable else kind,
                "(required)" if info["required"] else str(info.get("default")),
                info.get("description", ""),
            )
        out.print(table)


def _warn_shared(shared: list[str]) -> None:
    """Warn of each queue, consumer group, durable consumer or MQTT client id that several flows'
    triggers name: the broker splits the messages between them, and nothing else says so."""
    for text in shared:
        click.secho(f"warning: {text}", fg="yellow", err=True)


def _trigger_lines(flow_id: str, triggers: Any) -> list[str]:
    """Where the flow's message triggers listen, with what each holds on its broker (a queue,
    durable consumer or MQTT client id made up from the flow id) and the broker's address: to
    find, with the broker's own tools, why a message did or did not start a run."""
    from ductwork.core.triggers import trigger_from_dict
    from ductwork.settings import redact_url

    lines = []
    for data in triggers or ():
        trigger = trigger_from_dict(data)
        where = f"connection {trigger.conn_id!r}" if trigger.conn_id else redact_url(str(getattr(trigger, "url", "")))
        lines.append(f"trigger: {trigger.source} (at {where}, {_held(trigger, flow_id)})")
    return lines


def _held(trigger: Any, flow_id: str) -> str:
    from ductwork.core.triggers import MqttTopic, NatsJetStream, RabbitMQ, RedisStream

    if isinstance(trigger, RabbitMQ):
        return f"queue {trigger.queue_for(flow_id)!r}"
    if isinstance(trigger, NatsJetStream):
        return f"durable consumer {trigger.durable_for(flow_id)!r}"
    if isinstance(trigger, MqttTopic):
        return f"client id {trigger.client_id_for(flow_id)!r}"
    if isinstance(trigger, RedisStream):
        return f"consumer group {trigger.group_for(flow_id)!r}"
    return trigger.kind


@flows.command("graph")
@click.argument("flow_ref", metavar="FLOW")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "svg", "png"]),
    default=None,
    help="Drawing format (default: the one --output's suffix names, else svg).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write (default: FLOW.FORMAT in a terminal, standard output when it is redirected; '-' for stdout).",
)
@click.pass_obj
def graph_cmd(state: CliState, flow_ref: str, fmt: str | None, output: str | None) -> None:
    """Draw a flow's graph as DOT, SVG or PNG (SVG/PNG need Graphviz's dot)."""
    from ductwork.render.dot import render, to_dot

    fmt = _graph_format(fmt, output)
    graph = _graph(state, flow_ref)
    data = render(to_dot(graph), fmt)
    if output == "-" or (output is None and not sys.stdout.isatty()):
        # Redirected (`flows graph etl > etl.svg`, as with Airflow's `dags show`): the drawing goes
        # to standard output; writing the file too put the message into the drawing.
        sys.stdout.buffer.write(data)
        return
    path = Path(output or f"{graph.flow_id}.{fmt}")
    write_output(path, data)
    click.echo(f"wrote {path} ({len(graph.nodes)} tasks)", err=True)


_SUFFIX_FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}


def _graph_format(fmt: str | None, output: str | None) -> str:
    """The drawing's format: ``--format``, else the one the output file's suffix names, else
    SVG. ``-o etl.png`` wrote SVG into etl.png (the default format won over the name), so a
    suffix that names another format than ``--format`` is refused rather than mislabelled."""
    named = _SUFFIX_FORMATS.get(Path(output).suffix.lower()) if output and output != "-" else None
    if fmt is not None and named is not None and named != fmt:
        raise ParameterError(
            f"--format {fmt} does not match the output file {output!r} ({named}): "
            f"drop --format, or name the file .{fmt}"
        )
    suffix = Path(output).suffix.lower() if output and output != "-" else ""
    if fmt is None and suffix and named is None:  # `-o etl.gif` held SVG under a picture's name
        raise ParameterError(
            f"the output file {output!r}: {suffix} is no format flows graph draws "
            "(.dot, .gv, .svg, .png); name the file so, or give --format to write it anyway"
        )
    return fmt or named or "svg"


def _set_paused(state: CliState, flow_ref: str, paused: bool) -> None:
    from ductwork.cli.engine_state import ensure_flow, store
    from ductwork.store.engine import read_transaction, transaction
    from ductwork.store.repo import flows as flow_repo

    engine = store(state)
    with read_transaction(engine) as conn:
        known = flow_repo.get_flow(conn, flow_ref) is not None
    # A recorded flow is paused as it is (even when its file is broken now: that is when one
    # pauses); one never recorded is read from its file first.
    flow_id = flow_ref if known else ensure_flow(state, engine, flow_ref)
    with transaction(engine) as conn:
        flow_repo.set_paused(conn, flow_id, paused)
    click.echo(f"flow {flow_id}: {'paused' if paused else 'unpaused'}")


@flows.command("pause")
@click.argument("flow_ref", metavar="FLOW")
@click.pass_obj
def pause(state: CliState, flow_ref: str) -> None:
    """Stop the scheduler from creating runs of FLOW (running runs go on)."""
    _set_paused(state, flow_ref, True)


@flows.command("unpause")
@click.argument("flow_ref", metavar="FLOW")
@click.pass_obj
def unpause(state: CliState, flow_ref: str) -> None:
    """Let the scheduler create runs of FLOW again."""
    _set_paused(state, flow_ref, False)
