"""``luigi.tools.deps``: the tasks on the dependency paths from a task up to an upstream task
family (all its upstream tasks without one), and what each writes; so that a fix to a task can
be rerun with everything between it and its source (delete their outputs, build again).

    python -m luigi.tools.deps --module daily Aggregate --date 2024-03-01 --upstream-family Daily
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from .. import parameter
from ..cmdline_parser import CmdlineParser
from ..target import FileSystemTarget
from ..task import Config, flatten


def get_task_requires(task: Any) -> set[Any]:
    return set(flatten(task.requires()))


def dfs_paths(start_task: Any, goal_task_family: str | None, path: list[Any] | None = None) -> Iterator[Any]:
    """The tasks of every path from ``start_task`` to a task of ``goal_task_family`` (with
    ``None``, of every path)."""
    if path is None:
        path = [start_task]
    if goal_task_family is None or start_task.task_family == goal_task_family:
        yield from path
    for required in get_task_requires(start_task) - set(path):
        yield from dfs_paths(required, goal_task_family, [*path, required])


class upstream(Config):
    """``--upstream-family Daily``: where the paths ``find_deps_cli`` follows end."""

    family = parameter.OptionalParameter(default=None)


def find_deps(task: Any, upstream_task_family: str | None) -> set[Any]:
    """Every task on a path from ``task`` to one of ``upstream_task_family`` (both ends included)."""
    return set(dfs_paths(task, upstream_task_family))


def find_deps_cli() -> set[Any]:
    """``find_deps`` of the task named on the command line (Luigi's), up to ``--upstream-family``."""
    with CmdlineParser.global_instance(sys.argv[1:]) as parser:
        return find_deps(parser.get_task_obj(), upstream().family)


def get_task_output_description(task_output: Any) -> str:
    """``[FileSystem] path`` for a file target (local or mock); Luigi's other kinds (SSH, S3,
    PostgreSQL) are its ``luigi.contrib`` targets, which the shim has not: ``to be determined``."""
    if isinstance(task_output, FileSystemTarget):
        return f"[FileSystem] {task_output.path}"
    return "to be determined"


def main() -> None:
    for task in find_deps_cli():
        output = task.output()
        if isinstance(output, dict):
            outputs: Iterable[Any] = output.values()
        elif isinstance(output, Iterable):
            outputs = output
        else:
            outputs = [output]
        print(f"   TASK: {task}")
        for description in map(get_task_output_description, outputs):
            print(f"                       : {description}")


if __name__ == "__main__":
    main()
