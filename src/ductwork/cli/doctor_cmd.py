"""``ductwork doctor FILE...``: what Airflow DAG files or Luigi modules use that Ductwork does not
support (or supports differently), with file and line, before anything runs."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
def doctor(files: tuple[str, ...]) -> None:
    """List what FILES use that Ductwork's Airflow and Luigi shims refuse, ignore or run
    differently (a folder: its .py files, as `cp ~/airflow/dags/*.py flows/` copies them).
    Exits 1 when something is unsupported or a file cannot be parsed (it would not load)."""
    from ductwork.compat.doctor import examine
    from ductwork.compat.features import UNSUPPORTED

    unsupported = 0
    for path in _python_files(files):
        try:
            findings = examine(path)
        except SyntaxError as exc:  # the file would not load at all; the other files are still examined
            unsupported += 1
            click.secho(f"{path}:{exc.lineno or '?'}: cannot be parsed: SyntaxError: {exc.msg}", fg="red")
            continue
        except (UnicodeDecodeError, OSError) as exc:
            unsupported += 1
            click.secho(f"{path}: cannot be read: {type(exc).__name__}: {exc}", fg="red")
            continue
        if not findings:
            click.echo(f"{path}: nothing Ductwork runs differently")
        for finding in findings:
            unsupported += finding.status == UNSUPPORTED
            colour = {"unsupported": "red", "differs": "yellow"}.get(finding.status)
            click.secho(finding.render(path), fg=colour)
    if unsupported:
        click.echo(
            f"{unsupported} unsupported feature(s) or unreadable file(s): see the README's migration guide", err=True
        )
        sys.exit(1)


def _python_files(paths: tuple[str, ...]) -> list[str]:
    """The files to examine: each file named, and the .py files under each folder named (a
    folder was refused, "is a directory", where `ductwork doctor flows/` is the first thing a
    user moving a DAG folder types)."""
    from pathlib import Path

    found: list[str] = []
    for path in paths:
        if not Path(path).is_dir():
            found.append(path)
            continue
        inside = sorted(str(p) for p in Path(path).rglob("*.py") if p.is_file())
        if not inside:
            raise click.BadParameter(f"{path!r} holds no .py file", param_hint="'FILES...'")
        found.extend(inside)
    return found
