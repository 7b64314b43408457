"""``ductwork config``: the effective settings, and the values of config-class parameters, each
with where it came from (the precedence made visible)."""

from __future__ import annotations

from typing import Any

import click

from ductwork.cli.output import console, flow_output_to_stderr, print_json
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable


def _config_rows(state: CliState, cli_values: dict[str, dict[str, str]]) -> list[tuple[str, str, str | None, str]]:
    from ductwork.core.config import ParamSources, config_classes, use_sources
    from ductwork.errors import DuctworkError

    rows: list[tuple[str, str, str | None, str]] = []
    with use_sources(ParamSources.load(config_path=state.config_path, cli=cli_values)):
        for cls in sorted(config_classes(), key=lambda c: c.section_name()):
            try:
                instance = cls()
            except DuctworkError as exc:
                rows.append((cls.section_name(), "-", str(exc), "error"))
                continue
            for name, param in cls.declared_params().items():
                value = param.serialize_or_none(instance.param_values()[name])
                rows.append((cls.section_name(), name, value, instance.param_source(name).name.lower()))
    return rows


def _handoff(state: CliState) -> str:
    """Where ``ductwork trigger`` run from here puts its run (ADR 0023)."""
    import os

    from ductwork.cli import scheduler_socket

    settings = state.settings
    if not settings.trigger_handoff:
        return "ductwork trigger: the command writes its runs itself (trigger_handoff is false)"
    if not scheduler_socket.available():
        return "ductwork trigger: the command writes its runs itself (the handoff needs Linux)"
    cwd = os.getcwd()
    home = scheduler_socket.real_home(os.path.join(cwd, os.path.expanduser(str(settings.home))))
    flows = os.path.realpath(os.path.join(cwd, os.path.expanduser(str(settings.flows_folder))))
    found = scheduler_socket.ping(home, flows, settings.database_url, cwd)
    if found is None:
        return "ductwork trigger: the command writes its runs itself (no scheduler runs on this machine for this home)"
    pid, same = found
    if not same:
        return (
            f"ductwork trigger: the command writes its runs itself (the scheduler of this home, pid {pid}, "
            "has another flows folder or database)"
        )
    return f"ductwork trigger: handed to the scheduler running for this home (pid {pid})"


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, options_metavar="[OPTIONS] [NAME]"
)
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    help="Also show the parameters of the config classes this module defines.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def config(ctx: click.Context, modules: tuple[str, ...], as_json: bool) -> None:
    """Show the effective settings and their sources (flag, env, config_file, default).

    \b
    With a setting's NAME, only its value, for scripts (Airflow's `config get-value` too):
        ductwork config database_url

    \b
    With --module, also every config class parameter, resolved exactly as a run would
    (--Section-param value on this command line > DUCTWORK_SECTION_PARAM > ductwork.toml > default):
        ductwork config --module reports.py --GlobalParams-log-dir /tmp/logs
    """
    from ductwork.cli.luigi_args import parse_build_args

    state: CliState = ctx.obj
    if ctx.args and not modules and not ctx.args[0].startswith("-"):
        _print_one(state, ctx, as_json)
        return
    if ctx.args and not modules:
        _refuse_extra(ctx)
    rows = state.settings.describe()
    params: list[tuple[str, str, str | None, str]] = []
    if modules:
        from ductwork.core.config import config_classes
        from ductwork.loading import import_modules

        with flow_output_to_stderr(as_json):
            import_modules(modules)
        sections = {c.section_name(): dict.fromkeys(c.declared_params(), False) for c in config_classes()}
        args = parse_build_args(ctx.args, {}, sections, root_name="config")
        params = _config_rows(state, args.sections)
    if as_json:
        data: dict[str, Any] = {name: {"value": value, "source": source} for name, value, source in rows}
        if modules:
            data["parameters"] = [{"section": s, "name": n, "value": v, "source": src} for s, n, v, src in params]
        print_json(data)
        return
    table = DataTable("setting", "value", "source", title="settings")
    for row in rows:
        table.add_row(*row)
    console().print(table)
    console().print(_handoff(state), markup=False)
    if modules:
        ptable = DataTable("section", "parameter", "value", "source", title="config class parameters")
        for section, name, value, source in params:
            ptable.add_row(section, name, str(value), source)
        console().print(ptable)


def _print_one(state: CliState, ctx: click.Context, as_json: bool) -> None:
    """The value of the setting ``ctx.args`` names. ``ductwork config database_url`` and
    Airflow's ``config get-value core parallelism`` said "Got unexpected extra argument": a
    script had to cut the value out of the table or the JSON."""
    from ductwork.errors import did_you_mean

    names = list(ctx.args)
    if names[0] in ("get-value", "get") and len(names) > 1:  # Airflow's: its section is not ours
        names = names[-1:]
    if len(names) != 1:
        raise click.UsageError(f"Got unexpected extra argument ({names[1]}): give one setting's name", ctx=ctx)
    rows = {name: (value, source) for name, value, source in state.settings.describe()}
    name = names[0].replace("-", "_").lower()
    if name not in rows:
        raise click.UsageError(
            f"no setting {names[0]!r}.{did_you_mean(name, list(rows))} `ductwork config` lists them", ctx=ctx
        )
    value, source = rows[name]
    if as_json:
        print_json({name: {"value": value, "source": source}})
        return
    click.echo(value)


def _refuse_extra(ctx: click.Context) -> None:
    """Options are taken as they come only for config classes, which need ``--module``: without
    it ``ductwork config --jsno`` or ``--get x`` printed the table and exited 0, as if understood."""
    first = ctx.args[0]
    if first.startswith("-"):
        raise click.NoSuchOption(
            first.split("=", 1)[0],
            message=f"No such option: {first.split('=', 1)[0]} (a config class's --Section-param needs --module)",
            ctx=ctx,
        )
    raise click.UsageError(f"Got unexpected extra argument ({first})", ctx=ctx)
