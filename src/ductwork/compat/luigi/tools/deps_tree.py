"""``luigi.tools.deps_tree``: a task and its requirements as a tree, each with its significant
parameters and whether it is complete (what a build would run), without running anything.

    python -m luigi.tools.deps_tree --module reports Report --date 2024-03-01
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from ..cmdline_parser import CmdlineParser
from ..task import flatten


class bcolors:
    """The terminal colours of the states."""

    OKBLUE = "\033[94m"
    OKGREEN = "\033[92m"
    ENDC = "\033[0m"


def print_tree(task: Any, indent: str = "", last: bool = True) -> str:
    """The tree under ``task`` as text (Luigi's drawing: ``└─--`` for a last child, ``|---``
    before the others), one ``[Family-{params} (COMPLETE|PENDING)]`` line a task."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Task .* without outputs has no custom complete\\(\\) method")
        complete = task.complete()
    state = (bcolors.OKGREEN + "COMPLETE" if complete else bcolors.OKBLUE + "PENDING") + bcolors.ENDC
    params = task.to_str_params(only_significant=True)
    result = "\n" + indent + ("└─--" if last else "|---")
    indent += "    " if last else "|   "
    result += f"[{type(task).__name__}-{params} ({state})]"
    children = flatten(task.requires())
    for index, child in enumerate(children):
        result += print_tree(child, indent, index + 1 == len(children))
    return result


def main() -> None:
    with CmdlineParser.global_instance(sys.argv[1:]) as parser:
        print(print_tree(parser.get_task_obj()))


if __name__ == "__main__":
    main()
