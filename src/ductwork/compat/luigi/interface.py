"""``luigi.interface``: ``luigi.build`` and ``luigi.run``, on Ductwork's engine.

A build schedules the way a Luigi worker does (``complete()`` checked from the roots down; a
task whose ``complete()`` or ``requires()`` raises is a scheduling error; external tasks whose
outputs are absent are *missing*, pending, not failed) and then runs what is incomplete with
Ductwork's in-process executor, ``workers`` tasks at a time. It returns what Luigi returns:
``True`` when nothing failed and everything could be scheduled, or the ``LuigiRunResult`` with
``detailed_summary=True``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ductwork.core.class_flow import ClassTaskRunner, inherit_priority, load_task, task_node
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.flow import ClassTaskFlow
from ductwork.core.graph import FlowGraph, NodeSpec, topological
from ductwork.core.task import is_external

from . import lock
from ._config import core, scheduler, worker
from .event import Event
from .parameter import UnknownParameterException
from .task import RetryPolicy, Task, TaskException

logger = logging.getLogger("luigi-interface")


class PidLockAlreadyTakenExit(SystemExit):
    pass


@dataclass
class Plan:
    """What a build found before running anything."""

    roots: list[Task]
    tasks: dict[str, Task] = field(default_factory=dict)
    deps: dict[str, list[str]] = field(default_factory=dict)
    already_done: set[str] = field(default_factory=set)
    scheduling_errors: dict[str, str] = field(default_factory=dict)
    scheduling_tracebacks: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    """Incomplete tasks whose ``disabled`` is true: not run, as Luigi's scheduler never runs
    them (their requirements are), and what needs them is not run either."""
    batch_tasks: dict[str, Task] = field(default_factory=dict)
    """The task each batch (``batch_method``) runs as, by id."""
    """The traceback of each scheduling error, as Luigi's e-mails show it."""
    limit_reached: bool = False
    phased_out: bool = False
    """SIGUSR1 told the build to stop taking new tasks: those it did not start were not run."""

    @property
    def scheduling_succeeded(self) -> bool:
        return not self.scheduling_errors and not self.limit_reached


def schedule(roots: Sequence[Task], *, task_limit: int | None = None) -> Plan:
    """Walk the requirements from the roots as a Luigi worker adds tasks, firing the events it
    fires (dependency present, missing or discovered, broken task)."""
    plan = Plan(list(roots))
    stack = list(roots)[::-1]
    while stack:
        task = stack.pop()
        if task.task_id in plan.tasks:
            continue
        if task_limit is not None and len(plan.tasks) >= task_limit:
            plan.limit_reached = True
            logger.warning("will not run %s or any dependencies: the task limit (%d) was reached", task, task_limit)
            break
        plan.tasks[task.task_id] = task
        try:
            complete = task.complete()
        except Exception as exc:
            plan.scheduling_errors[task.task_id] = f"complete() of {task} raised {type(exc).__name__}: {exc}"
            plan.scheduling_tracebacks[task.task_id] = traceback.format_exc()
            logger.warning("will not run %s or any dependencies: complete() failed", task, exc_info=True)
            task.trigger_event(Event.DEPENDENCY_MISSING, task)
            _notifications().email_scheduling_failure(task, "complete", plan.scheduling_tracebacks[task.task_id])
            continue
        if complete:
            plan.already_done.add(task.task_id)
            task.trigger_event(Event.DEPENDENCY_PRESENT, task)
            continue
        if is_external(task):
            plan.deps[task.task_id] = []
            logger.warning(
                "Data for %s does not exist (yet?). The task is an external data dependency, "
                "so it cannot be run from this luigi process.",
                task,
            )
            task.trigger_event(Event.DEPENDENCY_MISSING, task)
            continue
        try:
            deps = task.deps()
        except Exception as exc:
            if type(exc).__name__ == "TaskException":
                raise
            plan.scheduling_errors[task.task_id] = f"requires() of {task} raised {type(exc).__name__}: {exc}"
            plan.scheduling_tracebacks[task.task_id] = traceback.format_exc()
            logger.warning("will not run %s or any dependencies: requires() failed", task, exc_info=True)
            task.trigger_event(Event.BROKEN_TASK, task, exc)
            _notifications().email_scheduling_failure(task, "deps", plan.scheduling_tracebacks[task.task_id])
            continue
        plan.deps[task.task_id] = [d.task_id for d in deps]
        if getattr(task, "disabled", False):
            plan.disabled.add(task.task_id)
        for dep in deps:
            task.trigger_event(Event.DEPENDENCY_DISCOVERED, task, dep)
        for dep in reversed(deps):
            if dep.task_id not in plan.tasks:
                stack.append(dep)
    return plan


def _notifications() -> Any:
    """``luigi.notifications``, looked up when a build needs it (its configuration classes are
    Tasks: an import at the top would make a circle through ``task``)."""
    import importlib

    return importlib.import_module(f"{__package__}.notifications")


class _SchedulingError:
    """The executable of a task that could not be scheduled: it fails at once."""

    template_fields: Sequence[str] = ()
    do_xcom_push = False

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        self.message = message
        self.on_execute_callback: list[Any] = []
        self.on_success_callback: list[Any] = []
        self.on_failure_callback: list[Any] = []
        self.on_retry_callback: list[Any] = []

    def execute(self, context: Any) -> Any:
        from ductwork.core.signals import FailNow

        raise FailNow(self.message)

    def on_kill(self) -> None:
        pass


class _Disabled:
    """The executable of a task whose ``disabled`` is true: it does not run (skipped, and what
    needs it with it), as Luigi's scheduler does not run a disabled task."""

    template_fields: Sequence[str] = ()
    do_xcom_push = False

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.on_execute_callback: list[Any] = []
        self.on_success_callback: list[Any] = []
        self.on_failure_callback: list[Any] = []
        self.on_retry_callback: list[Any] = []

    def execute(self, context: Any) -> None:
        from ductwork.core.signals import SkipTask

        raise SkipTask(f"{self.task_id} is disabled: not run")

    def on_kill(self) -> None:
        pass


class _TerminalRunner(ClassTaskRunner):
    """A build's runner: what ``run()`` prints goes to the terminal, as under Luigi's worker,
    which does not capture output (a build keeps no try logs it could go to instead)."""

    def execute(self, context: Any) -> Any:
        from ductwork.engine import logcapture

        with logcapture.capture(None):  # type: ignore[arg-type]  # no sink: the process's own stdout
            return super().execute(context)


class _RanInBatch:
    """A task run as part of its batch (``batch_method``): done when the batch's task is, as
    Luigi's scheduler marks every task of a batch done."""

    template_fields: Sequence[str] = ()
    do_xcom_push = False

    def __init__(self, task_id: str, batch_id: str) -> None:
        self.task_id = task_id
        self.batch_id = batch_id
        self.on_execute_callback: list[Any] = []
        self.on_success_callback: list[Any] = []
        self.on_failure_callback: list[Any] = []
        self.on_retry_callback: list[Any] = []

    def execute(self, context: Any) -> None:
        logger.info("%s ran in the batch %s", self.task_id, self.batch_id)

    def on_kill(self) -> None:
        pass


def batches(plan: Plan) -> list[list[Task]]:
    """The planned tasks that run as one, as Luigi's scheduler batches them: tasks to run of a
    class with ``batch_method`` parameters, agreeing on its other parameters, at most
    ``max_batch_size`` together."""
    groups: dict[tuple[str, tuple[tuple[str, str | None], ...]], list[Task]] = {}
    for task_id, task in plan.tasks.items():
        names = task.batch_param_names() if isinstance(task, Task) else []  # a Ductwork task has none
        if not names or task_id in plan.already_done or task_id in plan.scheduling_errors or is_external(task):
            continue
        others = tuple((k, v) for k, v in task.all_str_params().items() if k not in names)
        groups.setdefault((task.get_task_family(), others), []).append(task)
    out: list[list[Task]] = []
    for members in groups.values():
        size = members[0].max_batch_size
        step = len(members) if size == float("inf") else max(1, int(size))
        out.extend(chunk for i in range(0, len(members), step) if len(chunk := members[i : i + step]) > 1)
    return out


def batch_task(members: Sequence[Task]) -> Task:
    """The task a batch runs: the members' values of each batched parameter combined by its
    ``batch_method`` (``max`` of the dates, ``",".join`` of the names...)."""
    cls = type(members[0])
    values = dict(members[0].param_values())
    for name in cls.batch_param_names():
        method = cls.declared_params()[name].batch_method  # type: ignore[attr-defined]
        values[name] = method([m.param_values()[name] for m in members])
    return cls(**values)


class BuildFlow(ClassTaskFlow):
    """The flow of one build: the planned graph, with the plan's task objects as executables."""

    def __init__(self, plan: Plan) -> None:
        name = "luigi." + (plan.roots[0].get_task_family() if plan.roots else "build")
        super().__init__(name, root=lambda _p, _d: list(plan.roots), root_params={})
        self.plan = plan

    def materialize(
        self, *, params: Mapping[str, Any], logical_date: dt.datetime
    ) -> tuple[FlowGraph, Mapping[str, Any]]:
        plan = self.plan
        nodes: dict[str, NodeSpec] = {}
        runners: dict[str, Any] = {}
        if not plan.limit_reached:
            for task_id, task in plan.tasks.items():
                complete = task_id in plan.already_done
                deps = [plan.tasks[d] for d in plan.deps.get(task_id, []) if d in plan.tasks]
                broken = plan.scheduling_errors.get(task_id)  # its output() may raise too: not asked again
                nodes[task_id] = task_node(task, [] if complete else deps, complete=complete, broken=broken)
                if broken is not None:
                    runners[task_id] = _SchedulingError(task_id, broken)
                elif task_id in plan.disabled:
                    runners[task_id] = _Disabled(task_id)
                else:
                    runners[task_id] = _TerminalRunner(task)
            for members in batches(plan):
                self._run_as_one(members, nodes, runners)
        # What a task needs is as urgent as it is, as Luigi's scheduler ranks them.
        nodes = inherit_priority(nodes)
        graph = FlowGraph(self.meta(), topological(nodes, where=f"flow {self.flow_id!r}"))
        return graph, runners

    def _run_as_one(self, members: list[Task], nodes: dict[str, NodeSpec], runners: dict[str, Any]) -> None:
        """The batch's task needs what its members need; the members wait for it and are done
        with it."""
        batch = batch_task(members)
        self.plan.batch_tasks[batch.task_id] = batch
        ids = {m.task_id for m in members}
        deps = {d: self.plan.tasks[d] for m in members for d in self.plan.deps.get(m.task_id, []) if d not in ids}
        nodes[batch.task_id] = task_node(batch, list(deps.values()))
        runners[batch.task_id] = _TerminalRunner(batch)
        logger.info("%s runs as a batch of %d tasks (batch_method)", batch, len(members))
        for member in members:
            if member.task_id != batch.task_id:
                nodes[member.task_id] = replace(nodes[member.task_id], upstream=(batch.task_id,), retries=0)
                runners[member.task_id] = _RanInBatch(member.task_id, batch.task_id)

    def resolve_operator(self, node: NodeSpec) -> Any:
        """The runner of a task that ``run()`` yielded."""
        return _TerminalRunner(load_task(node))


def _schedule_and_run(tasks: Iterable[Task], override_defaults: Mapping[str, Any] | None = None) -> Any:
    import signal

    from ductwork.cli.phase_out import PhaseOut
    from ductwork.compat.luigi_mock_sharing import mock_data_shared
    from ductwork.engine.local import run_locally
    from ductwork.engine.supervisor import Limits

    from .configuration.core import luigi_sources
    from .execution_summary import LuigiRunResult

    tasks = _checked_tasks(tasks)
    _setup_logging()
    overrides = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (override_defaults or {}).items()}
    _check_core_names(overrides)
    sources = luigi_sources().with_cli({"core": overrides})
    with use_sources(sources):
        env = core()
        _apply_log_options(env.log_level, env.logging_conf_file)
        work = worker()
        phase_out = PhaseOut()
        if not work.no_install_shutdown_handler:  # as Luigi's worker, before the lock lists us
            phase_out.install()
        kill_signal = getattr(signal, "SIGUSR1", None) if env.take_lock else None
        if not env.no_lock and not lock.acquire_for(env.lock_pid_dir, env.lock_size, kill_signal):
            raise PidLockAlreadyTakenExit(1)
        sched = scheduler()
        roots = list(tasks)
        plan = schedule(roots, task_limit=work.task_limit)
        retrying = sched.retry_delay == 0 or work.keep_alive
        policy = RetryPolicy(retrying, float(sched.retry_delay), sched.retry_count)
        logger.info("Done scheduling tasks")
        limits = Limits(resources=resource_amounts(sources))
        fork = env.workers > 1 or work.force_multiprocessing  # as Luigi's worker
        with policy.applied(), _said_once(plan), mock_data_shared(fork):
            summary = run_locally(
                BuildFlow(plan),
                parallelism=max(1, env.workers),
                fork=fork,
                run_type="build",
                limits=limits,
                wind_down=phase_out.reason,
            )
        plan.phased_out = phase_out.told
        if sched.batch_emails:
            _batch_failures(plan, summary)
    result = LuigiRunResult(plan, summary)
    logger.info(result.summary_text)
    return result


class _ScheduledErrorsSaid(logging.Filter):
    """Drops the engine's ``X failed: ... FailNow`` record (with a traceback of the shim's own
    code) of a task whose scheduling failed: ``schedule`` already logged its error with the
    traceback of the task's ``complete()``/``requires()``, as Luigi's worker logs it, once."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("%s failed: ") and bool(args) and args[0] in self.plan.scheduling_errors)


@contextlib.contextmanager
def _said_once(plan: Plan) -> Iterator[None]:
    task_log = logging.getLogger("ductwork.task")
    said = _ScheduledErrorsSaid(plan)
    task_log.addFilter(said)
    try:
        yield
    finally:
        task_log.removeFilter(said)


def _batch_failures(plan: Plan, summary: Any) -> None:
    """With ``[scheduler] batch_emails``: add the build's failed tries and scheduling failures
    to the batch kept in the Ductwork home, and send it if it is due (``luigi.batch_notifier``).
    A problem with the batch is logged: it must not change the build's outcome."""
    from ductwork.settings import Settings

    from .batch_notifier import BatchNotifier

    try:
        notifier = BatchNotifier(Settings.load().home / "luigi" / "batch-email.json")
        tasks = {**plan.tasks, **plan.batch_tasks}
        for task_id, error in plan.scheduling_tracebacks.items():
            broken = tasks[task_id]
            notifier.add_scheduling_fail(str(broken), broken.task_family, _unbatched(broken), error, _owners(broken))
        for task_id, ran in summary.tasks.items():
            task = tasks.get(task_id)
            if task is None or task_id in plan.scheduling_errors:
                continue
            for t in ran.tries:
                if t.state.value in ("failed", "up_for_retry"):
                    expl = t.traceback or t.error or ""
                    notifier.add_failure(str(task), task.task_family, _unbatched(task), expl, _owners(task))
        with notifier.kept():
            notifier.update()
    except Exception as exc:
        logger.error("Not able to batch the failure e-mails of this build: %s", exc)


def _unbatched(task: Task) -> dict[str, Any]:
    """The task's significant parameters but those it is batched on (``batch_method``)."""
    batched = set(task.batch_param_names())
    return {k: v for k, v in task.to_str_params(only_significant=True).items() if k not in batched}


def _owners(task: Task) -> list[str]:
    owners = task.owner_email
    if not owners:
        return []
    return [o.strip() for o in owners.split(",")] if isinstance(owners, str) else list(owners)


def resource_amounts(sources: ParamSources) -> dict[str, int]:
    """``[resources]`` of luigi.cfg/luigi.toml (``db = 2``); a resource not named there has
    an amount of 1, as in Luigi."""
    section = sources.file.get("resources")
    return {name: int(amount) for name, amount in section.items()} if isinstance(section, Mapping) else {}


def _setup_logging() -> None:
    """Luigi configures logging for a build unless the program already has (INFO to stderr)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")


def _apply_log_options(level: str, conf_file: str) -> None:
    """``--log-level WARNING`` (``[core] log_level``) and ``--logging-conf-file`` as Luigi applies
    them: the level of the ``luigi-interface`` logger (which says what was scheduled and prints
    the summary), or the logging configuration file. Luigi's default level (DEBUG) leaves the
    logger as it is."""
    if conf_file:
        from logging import config as logging_config

        if not os.path.exists(conf_file):
            raise OSError(f"logging_conf_file {conf_file!r} does not exist")
        logging_config.fileConfig(conf_file, disable_existing_loggers=False)
        return
    number = logging.getLevelName(str(level).upper())
    if isinstance(number, int) and number > logging.DEBUG:
        logger.setLevel(number)


def build(
    tasks: Iterable[Task],
    worker_scheduler_factory: Any = None,
    detailed_summary: bool = False,
    **env_params: Any,
) -> Any:
    """Run the tasks (and what they require that is not complete) in this process."""
    env_params.setdefault("no_lock", True)  # luigi.build takes no process lock (Luigi's default)
    result = _schedule_and_run(list(tasks), override_defaults=env_params)
    return result if detailed_summary else result.scheduling_succeeded


def _checked_tasks(tasks: Iterable[Any]) -> list[Task]:
    """The tasks to build, each a task object: ``luigi.build([Report])`` (the class, not an
    instance) failed later with ``AttributeError: ... has no attribute 'task_id'``; Luigi's
    worker refuses it saying what it was given."""
    from ductwork.core.task import Task as AnyTask

    out = list(tasks)
    for task in out:
        if not isinstance(task, AnyTask):
            raise TaskException(f"Can not schedule non-task {task}")
    return out


def _check_core_names(overrides: Mapping[str, str]) -> None:
    """``luigi.build(..., local_schedular=True)``: a keyword that is no ``[core]`` option is
    refused naming it, as Luigi refuses it (it was dropped without a word, so a mistyped
    ``workers`` or ``no_lock`` quietly did nothing)."""
    from ductwork.errors import did_you_mean

    known = core.declared_params()
    for name in overrides:
        if name not in known:
            raise UnknownParameterException(
                f"core: unknown parameter {name}.{did_you_mean(name, list(known))} "
                "luigi.build() and luigi.run() take the [core] options as keywords"
            )


def _run(
    cmdline_args: Sequence[str] | None = None,
    main_task_cls: Any = None,
    worker_scheduler_factory: Any = None,
    use_dynamic_argparse: Any = None,
    **env_params: Any,
) -> Any:
    """Luigi's ``_run``: its ``worker_scheduler_factory`` and ``use_dynamic_argparse`` are
    taken and have no use here; other keywords are ``[core]`` options."""
    import sys

    from .cmdline_parser import CmdlineParser

    args = list(sys.argv[1:] if cmdline_args is None else cmdline_args)
    if main_task_cls is not None:
        args = [main_task_cls.get_task_family(), *args]
    with CmdlineParser.global_instance(args) as parser:
        _import_modules(parser.modules)
        parser.exit_if_no_task()
        task = parser.get_task_obj()
        return _schedule_and_run([task], override_defaults=env_params)


def run(*args: Any, **kwargs: Any) -> Any:
    """``luigi.run(['Task', '--param', 'x', '--local-scheduler'])``: parse, build, and return
    what ``build`` returns."""
    detailed = kwargs.pop("detailed_summary", False)
    result = _run(*args, **kwargs)
    return result if detailed else result.scheduling_succeeded


def _import_modules(modules: Iterable[str]) -> None:
    import importlib
    import sys

    for module in modules:
        if not module:
            continue
        if "" not in sys.path:
            sys.path.insert(0, "")
        importlib.import_module(module)
