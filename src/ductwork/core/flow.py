"""Flows: a named graph of tasks with a schedule (Airflow's DAG).

``with Flow("etl", schedule="@daily") as f:`` collects the operators created inside it. A flow
compiles to a ``FlowGraph`` (``to_graph``), validated for cycles, dangling dependencies and bad
defaults; the engine only ever consumes that graph. ``materialize`` gives the graph of one run:
for operator flows it is the static graph, for flows built from class tasks it is discovered by
walking ``requires()`` from the run's root task (``ClassTaskFlow``, compiled by
``core.class_flow``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ductwork.core.assets import AssetCondition, split_schedule
from ductwork.core.class_flow import PLANNING_ERROR, ClassTaskRunner, Unplanned, compile_tasks, load_task
from ductwork.core.definition_context import caller_site, note_flow, pop_flow, push_flow
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec, topological
from ductwork.core.keys import KEY
from ductwork.core.mapping import MAP_INDEX, MAPPED_TASK, MappedGroupMember, MappedOperator
from ductwork.core.operators.base import BaseOperator, Callback, _callbacks, accepted_arguments
from ductwork.core.params import (
    DateParameter,
    DateTimeParameter,
    MonthParameter,
    Parameter,
    parameter_for,
    resolve_values,
)
from ductwork.core.schedule import Schedule, as_aware, get_timezone, parse_schedule, timezone_name
from ductwork.core.task import Task
from ductwork.core.triggers import as_triggers
from ductwork.core.versioning import check_cache_mode
from ductwork.errors import (
    CycleError,
    DefinitionError,
    DuctworkError,
    DuplicateTaskError,
    NotFoundError,
    UnknownArgumentError,
    did_you_mean,
)

if TYPE_CHECKING:
    from ductwork.core.task_group import TaskGroup

_FLOW_ID = KEY  # the one rule for typed names (core.keys)


DEFAULT_MAX_ACTIVE_RUNS = 16
"""A flow's ``max_active_runs`` when it gives none (Airflow's ``max_active_runs_per_dag``)."""


class Flow:
    """A graph of tasks with a schedule.

    Args:
        flow_id: unique name; letters, digits, ``_``, ``.`` and ``-``.
        schedule: a cron string, a preset (``@daily``...), a timedelta, None (manual only), or
            assets: ``[a, b]`` (all of them), ``a | b``, ``a & b``, ``AssetOrTime("@daily", a | b)``.
        start_date, end_date: the first and last logical dates to schedule.
        timezone: IANA name; cron schedules follow its wall clock. Not given: the zone of an
            aware ``start_date`` (``pendulum.datetime(2024, 1, 1, tz="Europe/Madrid")``), as
            Airflow's DAG takes it, else UTC.
        default_args: arguments applied to every task that does not set them.
        params: typed run parameters (``Parameter`` objects or plain default values).
        catchup: whether the scheduler creates runs for every missed interval.
        max_active_runs: how many runs may be active at once.
        triggers: message sources that start runs (``ductwork.triggers``: ``RabbitMQ``,
            ``RedisStream``, ``NatsJetStream``, ``MqttTopic``); each message's payload is the run's
            parameters. Any flow also takes events posted to ``POST /api/v1/flows/{id}/events``.
        cache: ``"content"``: every task is skipped as up to date when its code, parameters and
            inputs match a previous successful try (a task's own ``cache=`` wins).
        run_timeout: how long a run may take from its start (a timedelta or seconds; Airflow's
            ``dagrun_timeout``). Past it the run fails: its running tries are stopped and end
            failed, the tasks not started yet are skipped, and the run's events say why.
    """

    def __init__(
        self,
        flow_id: str,
        *,
        description: str | None = "",
        schedule: Any = None,
        start_date: dt.datetime | dt.date | str | None = None,
        end_date: dt.datetime | dt.date | str | None = None,
        timezone: str | dt.tzinfo | None = None,
        default_args: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = (),
        owner: str = "",
        max_active_runs: int | None = DEFAULT_MAX_ACTIVE_RUNS,
        max_active_tasks: int | None = None,
        catchup: bool = False,
        doc: str = "",
        on_success_callback: Callback | Sequence[Callback] | None = None,
        on_failure_callback: Callback | Sequence[Callback] | None = None,
        on_failure_email: Iterable[str] = (),
        paused_on_creation: bool = False,
        triggers: Sequence[Any] = (),
        cache: str | None = None,
        run_timeout: dt.timedelta | float | None = None,
        **unknown: Any,
    ) -> None:
        self.defined_at = caller_site()
        if not isinstance(flow_id, str) or not _FLOW_ID.match(flow_id):
            raise DefinitionError(
                f"invalid flow id {flow_id!r}: use letters, digits, '_', '.' and '-', not starting with '-'"
            )
        if unknown:  # Python's own TypeError named Flow.__init__, not the flow, and guessed nothing
            bad = next(iter(unknown))
            raise UnknownArgumentError(
                f"flow {flow_id!r}: unknown argument {bad!r}.{did_you_mean(bad, accepted_arguments(type(self)))}"
            )
        self.flow_id = flow_id
        self.description = _text(description, "description", flow_id)
        self.doc = doc
        self.tz = get_timezone(_start_zone(start_date) if timezone is None else timezone, where=f"flow {flow_id!r}")
        time_schedule, condition = split_schedule(schedule, where=f"flow {flow_id!r}")
        self.asset_condition: AssetCondition | None = condition
        self.schedule: Schedule = parse_schedule(time_schedule, self.tz, where=f"flow {flow_id!r}")
        self.start_date = _as_datetime(start_date, self.tz, name="start_date", flow_id=flow_id)
        self.end_date = _as_datetime(end_date, self.tz, name="end_date", flow_id=flow_id)
        self.default_args = dict(default_args or {})
        self.params: dict[str, Parameter[Any]] = {
            name: _as_parameter(name, value) for name, value in (params or {}).items()
        }
        self.tags = _tags(tags, flow_id)
        self.owner = owner or str(self.default_args.get("owner", ""))
        self.max_active_runs = _max_active_runs(max_active_runs, flow_id)
        self.max_active_tasks = max_active_tasks
        _check_never_stuck(flow_id, self.start_date, self.end_date, self.max_active_runs, max_active_tasks)
        self.catchup = _flag(catchup, "catchup", flow_id)
        self.on_success_callback = _callbacks(on_success_callback)
        self.on_failure_callback = _callbacks(on_failure_callback)
        self.on_failure_email = tuple(on_failure_email)
        self.paused_on_creation = _flag(paused_on_creation, "paused_on_creation", flow_id)
        self.triggers = as_triggers(triggers, where=f"flow {flow_id!r}", flow_id=flow_id)
        self.cache = check_cache_mode(cache, where=f"flow {flow_id!r}")
        self.run_timeout = _as_timeout(run_timeout, flow_id)
        self.tasks: dict[str, BaseOperator] = {}
        self.groups: dict[str, TaskGroup] = {}
        self.fileloc: str | None = self.defined_at[0]
        self._token: Any = None

    @staticmethod
    def from_task(task_cls: type, **kwargs: Any) -> Flow:
        """A scheduled flow built from a class task; see ``flow_from_task``."""
        return flow_from_task(task_cls, **kwargs)

    # --- definition ------------------------------------------------------------------------
    def __enter__(self) -> Flow:
        self._token = push_flow(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pop_flow(self._token)
        note_flow(self)

    def add_task(self, op: BaseOperator) -> None:
        existing = self.tasks.get(op.task_id)
        if existing is op:
            return
        if existing is not None:
            file, line = existing.defined_at
            raise DuplicateTaskError(
                f"flow {self.flow_id!r}: duplicate task id {op.task_id!r} (first defined at {file}:{line})"
            )
        if op.task_id in self.groups:
            raise DuplicateTaskError(
                f"flow {self.flow_id!r}: task id {op.task_id!r} is already the id of a task group (as in Airflow, "
                "a task and a group cannot share an id)"
            )
        self.tasks[op.task_id] = op
        op.flow = self

    def add_group(self, group: TaskGroup) -> None:
        if group.group_id in self.groups:
            raise DuplicateTaskError(f"flow {self.flow_id!r}: duplicate task group id {group.group_id!r}")
        existing = self.tasks.get(group.group_id)
        if existing is not None:
            file, line = existing.defined_at
            raise DuplicateTaskError(
                f"flow {self.flow_id!r}: task group id {group.group_id!r} is already the id of a task (defined at "
                f"{file}:{line}; as in Airflow, a task and a group cannot share an id)"
            )
        self.groups[group.group_id] = group

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise NotFoundError(
                f"flow {self.flow_id!r} has no task {task_id!r}.{did_you_mean(task_id, self.tasks.keys())}"
            ) from None

    # --- parameters ------------------------------------------------------------------------
    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Typed run parameters: defaults overlaid with ``given`` (text or values).

        Raises an error naming the parameter for unknown names, missing required values and
        values of the wrong type.
        """
        return resolve_values(f"flow {self.flow_id!r}", self.params, given)

    # --- compilation -----------------------------------------------------------------------
    def meta(self) -> FlowMeta:
        return FlowMeta(
            flow_id=self.flow_id,
            description=self.description,
            schedule=self.schedule.text,
            timezone=timezone_name(self.tz),
            start_date=self.start_date.isoformat() if self.start_date else None,
            end_date=self.end_date.isoformat() if self.end_date else None,
            catchup=self.catchup,
            max_active_runs=self.max_active_runs,
            max_active_tasks=self.max_active_tasks,
            tags=self.tags,
            owner=self.owner,
            params={name: p.describe() for name, p in self.params.items()},
            fileloc=self.fileloc,
            style=self.style,
            doc=self.doc,
            paused_on_creation=self.paused_on_creation,
            on_failure_email=self.on_failure_email,
            callbacks=tuple(
                kind
                for kind, funcs in (("success", self.on_success_callback), ("failure", self.on_failure_callback))
                if funcs
            ),
            assets=self.asset_condition.to_dict() if self.asset_condition is not None else None,
            triggers=tuple(t.to_dict() for t in self.triggers),
            run_timeout=self.run_timeout.total_seconds() if self.run_timeout is not None else None,
        )

    @property
    def style(self) -> str:
        return "flow"

    def to_graph(self) -> FlowGraph:
        """The validated graph of this flow."""
        self._check_default_args()
        nodes = {task_id: op.to_node() for task_id, op in self.tasks.items()}
        try:
            ordered = topological(nodes, where=f"flow {self.flow_id!r}")
        except CycleError as exc:
            raise CycleError(exc.path, f"flow {self.flow_id!r}", self._edge_lines(exc.path)) from None
        groups = {gid: g.describe() for gid, g in self.groups.items()}
        return FlowGraph(self.meta(), ordered, groups)

    def _edge_lines(self, path: Sequence[str]) -> list[str]:
        """Where each edge of a cycle was written (``b >> c at line 8``; another file's are
        named): the flow's own line alone did not say which of its ``>>`` closed the cycle."""
        shown = []
        for up, down in itertools.pairwise(path):
            op = self.tasks.get(down)
            site = op.edge_sites.get(up) if op is not None else None
            if site is None:
                continue
            file, line = site
            at = f"line {line}" if file == self.defined_at[0] else f"{file}:{line}"
            shown.append(f"{up} >> {down} at {at}")
        return shown

    def materialize(
        self, *, params: Mapping[str, Any], logical_date: dt.datetime
    ) -> tuple[FlowGraph, Mapping[str, BaseOperator]]:
        """The graph of one run and the operators that execute its nodes."""
        return self.to_graph(), self.tasks

    def resolve_operator(self, node: NodeSpec) -> Any:
        """The operator for a node of one of this flow's runs (for an instance ``t[i]`` of a
        mapped task, the instance of ``t``)."""
        mapped = node.extra.get(MAPPED_TASK)
        if mapped is not None:
            base = self.get_task(str(mapped))
            if isinstance(base, MappedOperator | MappedGroupMember):
                return base.instance(int(node.extra[MAP_INDEX]))
        return self.get_task(node.task_id)

    def _check_default_args(self) -> None:
        if not self.default_args or not self.tasks:
            return
        accepted: set[str] = set()
        for op in self.tasks.values():
            accepted |= accepted_arguments(type(op))
        for key in self.default_args:
            if key not in accepted and key != "owner":
                raise DefinitionError(
                    f"flow {self.flow_id!r}: default_args key {key!r} is not an argument of any of its "
                    f"tasks.{did_you_mean(key, accepted)}"
                )

    def __repr__(self) -> str:
        return f"<Flow {self.flow_id!r} ({len(self.tasks)} tasks)>"


def _as_parameter(name: str, value: Any) -> Parameter[Any]:
    param = value if isinstance(value, Parameter) else parameter_for(None, value)
    param.name = param.name or name
    return param


def _as_timeout(value: Any, flow_id: str) -> dt.timedelta | None:
    """``run_timeout`` as a timedelta; a clear error for anything but a positive duration."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        timeout = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        timeout = dt.timedelta(seconds=value)
    else:
        raise DefinitionError(
            f"flow {flow_id!r}: run_timeout must be a timedelta or a number of seconds, not {type(value).__name__}"
        )
    if timeout <= dt.timedelta(0):
        raise DefinitionError(f"flow {flow_id!r}: run_timeout must be positive, not {timeout}")
    return timeout


def _start_zone(start_date: Any) -> str | dt.tzinfo:
    """The zone of an aware ``start_date``, else UTC: Airflow's DAG takes its timezone from its
    start date, and a DAG moved to ``Flow`` with a ``pendulum.datetime(..., tz="Europe/Madrid")``
    start ran its ``@daily`` schedule at UTC midnight instead of Madrid's. A pendulum zone is
    passed by its IANA name, which is what the flow records."""
    tz = start_date.tzinfo if isinstance(start_date, dt.datetime) else None
    if tz is None:
        return "UTC"
    name = getattr(tz, "key", None) or getattr(tz, "name", None)
    return name if isinstance(name, str) else tz


def _as_datetime(value: Any, tz: dt.tzinfo, *, name: str, flow_id: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DefinitionError(f"flow {flow_id!r}: {name} {value!r} is not an ISO date or datetime") from None
    if not isinstance(value, dt.date):
        raise DefinitionError(f"flow {flow_id!r}: {name} wants a date or datetime, got {value!r}")
    return as_aware(value, tz)


class ClassTaskFlow(Flow):
    """A flow whose graph is discovered, per run, from a root class task."""

    def __init__(
        self,
        flow_id: str,
        *,
        root: Callable[[Mapping[str, Any], dt.datetime], list[Task]],
        root_params: Mapping[str, Parameter[Any]],
        **flow_kwargs: Any,
    ) -> None:
        super().__init__(flow_id, params=dict(root_params), **flow_kwargs)
        self._root = root
        self.fixed_roots = False
        """The same root tasks whatever the run's parameters and date (``ductwork build``)."""
        self.plans_around_errors = False
        """A task whose ``complete()`` or ``requires()`` raises fails alone, its dependents with
        it, and the rest is built (``ductwork build``, as Luigi schedules); else the error stops
        the planning of the whole run."""
        self.configured_from: type[Task] | None = None
        """The task class whose run parameters these are (``Flow.from_task``): a parameter a run
        is not given takes the class's configured value (``[Report] region`` of luigi.cfg or
        ductwork.toml, its environment variable) before its default, as the class itself would."""

    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run's parameters; those not given are read where the task class reads them (a
        ``Flow.from_task`` run gave the class's defaults explicitly, so ``[Report] region =
        west`` was ignored, where ``ductwork build`` and Luigi take it). A run the scheduler
        creates, or ``trigger``, is given every parameter (its recorded defaults included), so
        this reads nothing for it."""
        cls = self.configured_from
        if cls is None:
            return super().resolve_params(given)
        merged = {
            # ``--param label=``: Luigi's OptionalParameter parses empty text as None, as the
            # run the scheduler makes of it does (from the recorded description), not as "".
            name: None if value == "" and getattr(self.params.get(name), "empty_is_null", False) else value
            for name, value in (given or {}).items()
        }
        sources = cls.configured_sources()
        for name in self.params:
            if name not in merged:
                found = sources.lookup(cls.section_name(), name)
                if found is not None:
                    merged[name] = found[0]
        return super().resolve_params(merged)

    def configured_defaults(self) -> dict[str, Any]:
        """The run parameters the task class's configuration sets (``[Report] region = west``),
        typed; one that does not parse is left out (the run's own resolution names it)."""
        cls = self.configured_from
        if cls is None:
            return {}
        sources = cls.configured_sources()
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            found = sources.lookup(cls.section_name(), name)
            if found is None:
                continue
            try:
                values[name] = resolve_values(f"flow {self.flow_id!r}", {name: param}, {name: found[0]})[name]
            except DuctworkError:
                continue
        return values

    def meta(self) -> FlowMeta:
        """As ``Flow.meta``, with a configured value as the parameter's default: the scheduler's
        runs, ``trigger``, the trigger form and ``flows show`` all start from the value the task
        class would take (a scheduled run of ``Flow.from_task(Report)`` built region=east while
        luigi.cfg said west, and ``ductwork build`` built west)."""
        meta = super().meta()
        configured = self.configured_defaults()
        if not configured:
            return meta
        params = {name: dict(info) for name, info in meta.params.items()}
        for name, value in configured.items():
            params[name]["default"] = self.params[name].serialize_or_none(value)
            params[name]["required"] = False
        return dataclasses.replace(meta, params=params)

    @property
    def style(self) -> str:
        return "class_tasks"

    def roots_for(self, params: Mapping[str, Any], logical_date: dt.datetime) -> list[Task]:
        return self._root(params, logical_date)

    def materialize(
        self, *, params: Mapping[str, Any], logical_date: dt.datetime
    ) -> tuple[FlowGraph, Mapping[str, Any]]:
        broken: dict[str, Unplanned] | None = {} if self.plans_around_errors else None
        nodes, tasks = compile_tasks(self.roots_for(params, logical_date), broken=broken, tell=True)
        graph = FlowGraph(self.meta(), topological(nodes, where=f"flow {self.flow_id!r}"))
        runners = {}
        for task_id, t in tasks.items():  # the requirements found by the compile, not requires() at each try
            unplanned = broken.get(task_id) if broken else None
            runners[task_id] = ClassTaskRunner(
                t,
                [tasks[u] for u in graph.nodes[task_id].upstream],
                broken=unplanned.message if unplanned is not None else None,
                planning_exc=unplanned.error if unplanned is not None else None,
            )
        return graph, runners

    def to_graph(self) -> FlowGraph:
        """The full requirement graph for the default parameters and today's date (display)."""
        params = {n: p.default for n, p in self.params.items() if not p.required}
        params.update(self.configured_defaults())
        missing = [n for n in self.params if n not in params]
        if missing:
            return FlowGraph(self.meta(), {})
        roots = self.roots_for(params, dt.datetime.now(self.tz))
        nodes, _ = compile_tasks(roots, prune_complete=False, broken={} if self.plans_around_errors else None)
        return FlowGraph(self.meta(), topological(nodes, where=f"flow {self.flow_id!r}"))

    def resolve_operator(self, node: NodeSpec) -> Any:
        """The runner of a node in a worker (the graph was built elsewhere): one that could not
        be planned fails at once with the line the planning gave."""
        broken = node.extra.get(PLANNING_ERROR)
        return ClassTaskRunner(load_task(node), broken=str(broken) if broken is not None else None)


def _date_value(param: Parameter[Any], logical_date: dt.datetime) -> Any:
    """The run's logical date as the parameter takes it: a datetime or date for date types,
    else what the parameter parses from the day written ``2024-03-15``, as a command line
    would give it (a string parameter gets that text, a date interval parameter that day)."""
    if isinstance(param, DateTimeParameter):
        return logical_date
    if isinstance(param, DateParameter | MonthParameter):
        return logical_date.date()
    try:
        return param.parse(logical_date.date().isoformat())
    except (TypeError, ValueError):
        return logical_date


def flow_from_task(
    task_cls: type[Task],
    *,
    flow_id: str | None = None,
    date_param: str | None = None,
    **flow_kwargs: Any,
) -> ClassTaskFlow:
    """A scheduled flow whose runs build ``task_cls`` for the run's logical date.

    ``date_param`` names the task parameter that receives the logical date; the task's other
    parameters become the flow's run parameters, with their types.
    """
    if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
        raise DefinitionError(f"Flow.from_task() wants a Task subclass, got {task_cls!r}")
    declared = task_cls.declared_params()
    if date_param is not None and date_param not in declared:
        raise DefinitionError(
            f"Flow.from_task({task_cls.__name__}): date_param {date_param!r} is not a parameter of "
            f"{task_cls.__name__}.{did_you_mean(date_param, declared)}"
        )
    if flow_kwargs.get("cache") is not None:
        raise DefinitionError(
            f"Flow.from_task({task_cls.__name__}): cache= does not apply to class tasks, which are skipped "
            "when their outputs exist (complete()); use cache='content' on a Flow of operators or @task"
        )
    run_params = {n: p for n, p in declared.items() if n != date_param}

    def root(params: Mapping[str, Any], logical_date: dt.datetime) -> list[Task]:
        kwargs = dict(params)
        if date_param is not None:
            kwargs[date_param] = _date_value(declared[date_param], logical_date)
        return [task_cls(**kwargs)]

    flow = ClassTaskFlow(
        flow_id or task_cls.get_task_family(),
        root=root,
        root_params=run_params,
        **flow_kwargs,
    )
    flow.plans_around_errors = True  # as Luigi schedules, and ``ductwork build``: the rest is built
    flow.configured_from = task_cls
    flow.description = flow.description or (task_cls.__doc__ or "").strip().split("\n")[0]
    return flow


def flow_for_tasks(tasks: Sequence[Task], *, flow_id: str | None = None) -> ClassTaskFlow:
    """An unscheduled flow that builds these task instances (``ductwork build``)."""
    roots = list(tasks)
    if not roots:
        raise DefinitionError("nothing to build: no tasks given")
    name = flow_id or ("build." + roots[0].get_task_family())
    flow = ClassTaskFlow(name, root=lambda _p, _d: roots, root_params={})
    flow.fixed_roots = True
    flow.plans_around_errors = True
    # Defined where its first task's class is, not where the command was typed (it recorded
    # click's decorators.py, whose hash then counted as the run's code).
    module = sys.modules.get(type(roots[0]).__module__)
    where = getattr(module, "__file__", None)
    if where:
        flow.fileloc = where
        flow.defined_at = (where, flow.defined_at[1] if flow.defined_at[0] == where else 0)
    return flow


def _flag(value: Any, name: str, flow_id: str) -> bool:
    """A yes/no argument of a flow: ``catchup="False"`` (from a config file or the environment)
    is a non-empty text, so it meant True and the scheduler created every missed run since
    ``start_date``. Only True, False (or 1, 0) are taken."""
    if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise DefinitionError(f"flow {flow_id!r}: {name} must be True or False, got {value!r}")


def _text(value: Any, name: str, flow_id: str) -> str:
    """A text argument of a flow: None (Airflow's DAG writes ``description=None``) is empty text;
    it was an IntegrityError traceback when the run was recorded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"flow {flow_id!r}: {name} must be text, got {value!r}")
    return value


def _tags(tags: Any, flow_id: str) -> tuple[str, ...]:
    """``tags=None`` (Airflow's default, written out) is no tags; it was "TypeError: 'NoneType'
    object is not iterable", naming neither the flow nor the argument. A tag is text."""
    if tags is None:
        return ()
    if isinstance(tags, str):  # tags="etl" would be the tags 'e', 't', 'l'
        raise DefinitionError(f"flow {flow_id!r}: tags must be a list of texts, such as [{tags!r}], got {tags!r}")
    try:
        found = tuple(tags)
    except TypeError:
        raise DefinitionError(f"flow {flow_id!r}: tags must be a list of texts, got {tags!r}") from None
    bad = [t for t in found if not isinstance(t, str)]
    if bad:
        raise DefinitionError(f"flow {flow_id!r}: each tag must be text, got {bad[0]!r}")
    return found


def _max_active_runs(value: Any, flow_id: str) -> int:
    """None (Airflow's default, written out) is the default, 16; anything but a whole number is
    refused naming the argument, where ``int(None)`` was a TypeError naming neither."""
    if value is None:
        return DEFAULT_MAX_ACTIVE_RUNS
    try:
        number = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None:
        raise DefinitionError(f"flow {flow_id!r}: max_active_runs must be a whole number, got {value!r}")
    return number


def _check_never_stuck(
    flow_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    max_active_runs: int,
    max_active_tasks: int | None,
) -> None:
    """Settings under which the flow could never run are refused where they are written (they
    loaded, and a `trigger --wait` then waited for ever)."""
    if start is not None and end is not None and end < start:
        raise DefinitionError(
            f"flow {flow_id!r}: end_date {end.isoformat()} is before start_date {start.isoformat()}: no run could fall "
            "between them"
        )
    if max_active_runs < 1:
        raise DefinitionError(
            f"flow {flow_id!r}: max_active_runs={max_active_runs}: no run could ever start (use 1 or more)"
        )
    if max_active_tasks is not None and max_active_tasks < 1:
        raise DefinitionError(
            f"flow {flow_id!r}: max_active_tasks={max_active_tasks}: no task could ever start (use 1 or more, or None)"
        )
