"""``ductwork runs diff``: what changed between two runs of a flow (graph and code)."""

from __future__ import annotations

import json

import click

from ductwork.cli.state import CliState


@click.command("diff")
@click.argument("flow_id")
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def diff_runs(state: CliState, flow_id: str, first: str, second: str, as_json: bool) -> None:
    """Compare the graphs two runs of FLOW_ID recorded (tasks added, removed, changed; edges; the
    flow's settings) and the code they were created from (files, git commits)."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.output import print_json
    from ductwork.services.run_diff import diff_runs as diff

    found = diff(store(state), flow_id, first, second)
    if as_json:
        print_json(
            {
                "same_graph": found.same_graph,
                "same_code": found.same_code,
                "added": found.added,
                "removed": found.removed,
                "changed": {c.task_id: {k: list(v) for k, v in c.fields.items()} for c in found.changed},
                "edges_added": [list(e) for e in found.edges_added],
                "edges_removed": [list(e) for e in found.edges_removed],
                "flow_changes": {k: list(v) for k, v in found.flow_changes.items()},
                "files_added": found.files_added,
                "files_removed": found.files_removed,
                "files_changed": found.files_changed,
                "code": [dict(found.first.code or {}), dict(found.second.code or {})],
            }
        )
        return
    click.echo(f"{flow_id}: {first} -> {second}")
    click.echo(f"  code: {_code(found.first.code)} -> {_code(found.second.code)}")
    if found.same_graph:
        click.echo("  graph: the same")
    for task in found.added:
        click.echo(f"  + task {task}")
    for task in found.removed:
        click.echo(f"  - task {task}")
    for change in found.changed:
        for name, (old, new) in change.fields.items():
            click.echo(
                f"  ~ task {change.task_id}: {name} {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}"
            )
    for up, down in found.edges_added:
        click.echo(f"  + edge {up} >> {down}")
    for up, down in found.edges_removed:
        click.echo(f"  - edge {up} >> {down}")
    for name, (old, new) in found.flow_changes.items():
        click.echo(f"  ~ flow {name}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}")
    for name in found.files_changed:
        click.echo(f"  ~ file {name}")
    for name in found.files_added:
        click.echo(f"  + file {name}")
    for name in found.files_removed:
        click.echo(f"  - file {name}")


def _code(code: object) -> str:
    if not isinstance(code, dict) or not code.get("hash"):
        return "unknown"
    git = code.get("git") or {}
    commit = (
        f" (git {str(git['commit'])[:10]}{', changed since' if git.get('dirty') else ''})" if git.get("commit") else ""
    )
    return f"{code['hash']}{commit}"
