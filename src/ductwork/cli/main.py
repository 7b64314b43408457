"""The ``ductwork`` command group and its error handling.

Errors Ductwork raises on purpose (``DuctworkError``) print as one clear message and exit with
status 2; a run in which a task failed exits with status 1.
"""

from __future__ import annotations

import atexit
import gc
import os
from pathlib import Path

import click

from ductwork.cli.lazy_group import LazyGroup
from ductwork.cli.quick_exit import leave
from ductwork.cli.state import CliState
from ductwork.gc_tuning import tune_collector

COMMANDS: dict[str, str] = {
    "run": "run_cmd:run",
    "build": "run_cmd:build",
    "flows": "flows_cmd:flows",
    "config": "config_cmd:config",
    "tasks": "tasks_cmd:tasks",
    "db": "db_cmd:db",
    "doctor": "doctor_cmd:doctor",
    "scheduler": "scheduler_cmd:scheduler",
    "trigger": "runs_cmd:trigger",
    "backfill": "runs_cmd:backfill",
    "runs": "runs_cmd:runs",
    "pools": "pools_cmd:pools",
    "connections": "secrets_cmd:connections",
    "variables": "secrets_cmd:variables",
    "webserver": "webserver_cmd:webserver",
    "standalone": "webserver_cmd:standalone",
    "users": "users_cmd:users",
    "tokens": "users_cmd:tokens",
    "pipelines": "pipelines_cmd:pipelines",
    "worker": "worker_cmd:worker",
    "workers": "worker_cmd:workers",
    "audit": "audit_cmd:audit",
    "why": "why_cmd:why",
    "assets": "assets_cmd:assets",
    "triggerer": "triggerer_cmd:triggerer",
    "triggers": "triggers_cmd:triggers",
}
"""Each command's module (under ``ductwork.cli``) and object, imported only when the command
runs or help lists it: ``ductwork --version`` or ``flows list`` must not pay for SQLAlchemy,
Alembic, FastAPI and Celery (issue 15's start-up target)."""

SUBCOMMANDS: dict[str, list[str]] = {
    "runs": ["cleanup_cmd:delete_run", "code_cmd:diff_runs"],
    "db": ["cleanup_cmd:clean"],
    "tasks": ["render_cmd:render"],
    "flows": ["pipelines_cmd:export"],
}
"""Commands that live in another module than their group's."""


EXIT_STATUSES = """\b
Exit status (every command):
  0    done as asked (a run that succeeded)
  1    done, and what it found failed: a run or task failed (run, build,
       trigger --wait, tasks test), flow files that do not import (flows
       list), findings (doctor, db check), a question answered no
  2    refused, nothing changed: a wrong option or value, an unknown flow,
       run, task or name, a flow file that does not import (run, trigger)
  3    trigger --wait --timeout: the run had not ended
  130  Ctrl-C; 143: SIGTERM; 141: the reader of the output went away"""
"""Shown under ``ductwork --help`` and in the README: scripts and CI jobs branch on these, and
they were written down only command by command."""


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    lazy_subcommands=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_STATUSES,
)
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
    if os.environ.get("NO_COLOR"):  # no-color.org: Rich honours it, click's coloured messages did not
        ctx.color = False  # the commands' contexts inherit it, and the errors printed after them read it
    ctx.obj = CliState(
        config_path=config_path,
        overrides={"home": Path(home) if home else None, "flows_folder": Path(flows_folder) if flows_folder else None},
    )


def main() -> None:
    tune_collector()  # before the commands' imports: they allocate a few hundred thousand objects
    # At exit, Python's last garbage collection walks every object the command made (the
    # ORM-free store, Rich, click: a million objects): 0.3-0.8 s on a busy 2-core machine, paid
    # after the command's work is done and before the shell gets its prompt back (`trigger
    # --wait` returning, `--version`). Freezing the heap first skips that walk; files and
    # logging are still flushed by their own exit handlers.
    atexit.register(gc.freeze)
    try:
        cli(prog_name="ductwork")
    except SystemExit as exc:  # click ends every command so, 0 included
        leave(exc)
