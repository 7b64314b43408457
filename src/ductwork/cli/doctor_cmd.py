"""``ductwork doctor FILE...``: what Airflow DAG files or Luigi modules use that Ductwork does not
support (or supports differently), with file and line, before anything runs."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def doctor(files: tuple[str, ...]) -> None:
    """List what FILES use that Ductwork's Airflow and Luigi shims refuse, ignore or run
    differently. Exits 1 when something is unsupported or a file cannot be parsed (it would
    not load)."""
    from ductwork.compat.doctor import examine
    from ductwork.compat.features import UNSUPPORTED

    unsupported = 0
    for path in files:
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
