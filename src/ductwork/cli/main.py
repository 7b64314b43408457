"""The ``ductwork`` command group and its error handling.

Errors Ductwork raises on purpose (``DuctworkError``) print as one clear message and exit with
status 2; a run in which a task failed exits with status 1.
"""

from __future__ import annotations

import atexit
import gc
from pathlib import Path

import click

from ductwork.cli import (
    assets_cmd,
    audit_cmd,
    audit_hook,
    cleanup_cmd,
    code_cmd,
    config_cmd,
    db_cmd,
    doctor_cmd,
    flows_cmd,
    pipelines_cmd,
    pools_cmd,
    render_cmd,
    run_cmd,
    runs_cmd,
    scheduler_cmd,
    secrets_cmd,
    tasks_cmd,
    triggerer_cmd,
    users_cmd,
    webserver_cmd,
    why_cmd,
    worker_cmd,
)
from ductwork.cli.state import CliState, DuctworkGroup


@click.group(cls=DuctworkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: ./ductwork.toml or $DUCTWORK_CONFIG).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="Where Ductwork keeps its database and logs (default: $DUCTWORK_HOME or ~/.ductwork).",
)
@click.option(
    "--flows-folder",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of flow files (default: $DUCTWORK_FLOWS_FOLDER or ./flows).",
)
@click.version_option(package_name="ductwork")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, home: str | None, flows_folder: str | None) -> None:
    """Ductwork: pipelines as code, scheduled, run, retried and shown."""
    ctx.obj = CliState(
        config_path=config_path,
        overrides={"home": Path(home) if home else None, "flows_folder": Path(flows_folder) if flows_folder else None},
    )


cli.add_command(run_cmd.run)
cli.add_command(run_cmd.build)
cli.add_command(flows_cmd.flows)
cli.add_command(config_cmd.config)
cli.add_command(tasks_cmd.tasks)
cli.add_command(db_cmd.db)
cli.add_command(doctor_cmd.doctor)
cli.add_command(scheduler_cmd.scheduler)
cli.add_command(runs_cmd.trigger)
cli.add_command(runs_cmd.backfill)
cli.add_command(runs_cmd.runs)
runs_cmd.runs.add_command(cleanup_cmd.delete_run)
runs_cmd.runs.add_command(code_cmd.diff_runs)
db_cmd.db.add_command(cleanup_cmd.clean)
cli.add_command(pools_cmd.pools)
cli.add_command(secrets_cmd.connections)
cli.add_command(secrets_cmd.variables)
tasks_cmd.tasks.add_command(render_cmd.render)
cli.add_command(webserver_cmd.webserver)
cli.add_command(webserver_cmd.standalone)
cli.add_command(users_cmd.users)
cli.add_command(users_cmd.tokens)
cli.add_command(pipelines_cmd.pipelines)
flows_cmd.flows.add_command(pipelines_cmd.export)
cli.add_command(worker_cmd.worker)
cli.add_command(worker_cmd.workers)
cli.add_command(audit_cmd.audit)
cli.add_command(why_cmd.why)
cli.add_command(assets_cmd.assets)
cli.add_command(triggerer_cmd.triggerer)
audit_hook.instrument(cli)


def main() -> None:
    # At exit, Python's last garbage collection walks every object the command made (the
    # ORM-free store, Rich, click: a million objects): 0.3-0.8 s on a busy 2-core machine, paid
    # after the command's work is done and before the shell gets its prompt back (`trigger
    # --wait` returning, `--version`). Freezing the heap first skips that walk; files and
    # logging are still flushed by their own exit handlers.
    atexit.register(gc.freeze)
    cli(prog_name="ductwork")
