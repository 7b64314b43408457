"""``luigi.retcodes``: the exit code of ``luigi`` from what the build did (``[retcode]``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from . import parameter as p
from .task import Config

logger = logging.getLogger("luigi-interface")


class retcode(Config):
    unhandled_exception = p.IntParameter(default=4, description="For internal luigi errors.")
    missing_data = p.IntParameter(default=0, description="For when there are incomplete ExternalTask dependencies.")
    task_failed = p.IntParameter(default=0, description="For when a task's run() method fails.")
    already_running = p.IntParameter(default=0, description="For both local --lock and luigid locks.")
    scheduling_error = p.IntParameter(default=0, description="For when a task's complete() or requires() fails.")
    not_run = p.IntParameter(default=0, description="For when a task is not granted run permission.")


def run_with_retcodes(argv: Sequence[str]) -> None:
    """Run a build from a command line and exit with the configured code for what happened:
    the largest code among the categories present (failed, missing data, scheduling errors,
    not run), ``unhandled_exception`` when the build could not start.

    As Luigi's parser does, the ``--module`` is imported and the task name looked up before
    any of that: a module that does not import or a task name that is not there is raised
    (exit status 1, as from ``luigi``), not counted as an unhandled exception of the build, so
    a cron line tells a mistyped command from a build that broke."""
    from .cmdline_parser import CmdlineParser
    from .interface import PidLockAlreadyTakenExit, _import_modules, _run
    from .task_register import Register

    with CmdlineParser.global_instance(list(argv), allow_override=True) as parser:
        _import_modules(parser.modules)
        parser.exit_if_no_task()  # so there is a task name from here on
        Register.get_task_cls(parser.task_name or "")
        codes = retcode()
    try:
        result = _run(list(argv))
    except PidLockAlreadyTakenExit:
        sys.exit(codes.already_running)
    except Exception:
        logger.exception("Uncaught exception in luigi")
        sys.exit(codes.unhandled_exception)
    sets = result.task_sets
    conditions = (
        (codes.missing_data, bool(sets["still_pending_ext"])),
        (codes.task_failed, bool(sets["failed"])),
        (codes.already_running, bool(sets["run_by_other_worker"])),
        (codes.scheduling_error, bool(sets["scheduling_error"]) or result.plan.limit_reached),
        (codes.not_run, bool(sets["not_run"])),
    )
    expected = max(code if cond else 0 for code, cond in conditions)
    root = result.plan.roots[0] if result.plan.roots else None
    if expected == 0 and root is not None and root not in sets["completed"] and root not in sets["already_done"]:
        sys.exit(codes.not_run)
    sys.exit(expected)
