"""``airflow.models.dag.DAG``: Airflow's DAG constructor over Ductwork's ``Flow``.

Arguments are translated, not reinterpreted: ``schedule``/``schedule_interval`` become the flow's
schedule (Airflow 2's default, one day, when neither is given), ``Param`` objects become typed
run parameters checked against their JSON schema, ``doc_md`` the flow's documentation,
``dagrun_timeout`` its run timeout, ``concurrency`` its ``max_active_tasks``. Arguments that only
tune Airflow's UI are accepted and ignored; those Ductwork cannot honour fail here, naming the
file and line (``ductwork.compat.features``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ductwork.compat.features import refuse
from ductwork.core.assets import is_asset_schedule
from ductwork.core.flow import Flow
from ductwork.core.graph import FlowMeta
from ductwork.core.params import NO_DEFAULT
from ductwork.core.schedule import timezone_name

from ._dag_params import DagParams, as_parameter
from ._dag_tasks import DagTasks

log = logging.getLogger("ductwork.compat.airflow")


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"

    def __bool__(self) -> bool:
        return False


NOTSET: Any = _NotSet()
ONE_DAY = dt.timedelta(days=1)


def _schedule(schedule: Any, schedule_interval: Any, timetable: Any) -> Any:
    """The flow schedule for Airflow's three ways of giving one."""
    if timetable is not None:
        schedule = timetable
    elif schedule is NOTSET:
        schedule = ONE_DAY if schedule_interval is NOTSET else schedule_interval
    if is_asset_schedule(schedule):
        # Datasets/assets are Ductwork assets (compat.airflow._assets): the flow is scheduled on them.
        return schedule
    if isinstance(schedule, list | tuple):
        if not schedule:
            return None  # Airflow: an empty dataset list never schedules the DAG
        refuse(f"DAG(schedule={schedule!r})", "a list given as a schedule must hold only Dataset/Asset objects")
    return time_schedule(schedule)


def time_schedule(schedule: Any) -> Any:
    """A time schedule (a cron string, a preset, a timedelta, a shimmed timetable) for a flow."""
    as_schedule = getattr(schedule, "ductwork_schedule", None)  # airflow.timetables.* shims
    if callable(as_schedule):
        return as_schedule()
    if schedule == "@continuous":
        refuse("DAG(schedule='@continuous')", "continuous schedules; use a short interval")
    if schedule is not None and not isinstance(schedule, str | dt.timedelta):
        refuse(f"DAG(schedule={type(schedule).__name__}(...))", "custom timetables; use a cron string or a timedelta")
    return schedule


class DAG(Flow):
    """Airflow's ``DAG``; use it as ``with DAG(...) as dag:`` or pass ``dag=dag`` to operators."""

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        schedule: Any = NOTSET,
        schedule_interval: Any = NOTSET,
        timetable: Any = None,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        full_filepath: str | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: Any = None,
        user_defined_macros: Mapping[str, Any] | None = None,
        user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
        default_args: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
        max_active_tasks: int | None = None,
        max_active_runs: int = 16,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: dt.timedelta | None = None,
        sla_miss_callback: Any = None,
        default_view: str | None = None,
        orientation: str | None = None,
        catchup: bool = True,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        doc_md: str | None = None,
        params: Mapping[str, Any] | None = None,
        access_control: Any = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: Mapping[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        tags: Iterable[str] | None = None,
        owner_links: Mapping[str, str] | None = None,
        auto_register: bool = True,
        fail_stop: bool = False,
        dag_display_name: str | None = None,
    ) -> None:
        if user_defined_filters:
            refuse("DAG(user_defined_filters=...)", "custom Jinja filters per DAG")
        if render_template_as_native_obj:
            refuse("DAG(render_template_as_native_obj=True)", "templates always render to strings")
        if jinja_environment_kwargs:
            refuse("DAG(jinja_environment_kwargs=...)", "the Jinja environment is Ductwork's sandbox")
        if fail_stop:
            refuse("DAG(fail_stop=True)", "stopping a whole run at the first failed task")
        default_args = dict(default_args or {})
        if start_date is None and default_args.get("start_date") is not None:
            start_date = default_args["start_date"]
        if end_date is None and default_args.get("end_date") is not None:
            end_date = default_args["end_date"]
        tz = getattr(start_date, "tzinfo", None) or "UTC"
        tz_name = getattr(tz, "name", None) or tz
        zone = timetable_zone(timetable if timetable is not None else schedule)
        if zone is not None:
            # Airflow evaluates a timetable's cron in the timetable's own timezone, whatever the
            # start date's; a naive start or end date stays UTC, Airflow's default timezone.
            tz_name = getattr(zone, "name", None) or zone
            start_date, end_date = _utc_if_naive(start_date), _utc_if_naive(end_date)
        super().__init__(
            dag_id,
            description=description or "",
            schedule=_schedule(schedule, schedule_interval, timetable),
            start_date=start_date,
            end_date=end_date,
            timezone=tz_name if isinstance(tz_name, str) else tz,
            default_args=default_args,
            params={name: as_parameter(name, value) for name, value in (params or {}).items()},
            tags=tuple(tags or ()),
            max_active_runs=max_active_runs,
            max_active_tasks=max_active_tasks or concurrency or 16,
            catchup=catchup,
            doc=doc_md or "",
            on_success_callback=on_success_callback,
            on_failure_callback=on_failure_callback,
            paused_on_creation=_paused_on_creation(is_paused_upon_creation),
            run_timeout=dagrun_timeout,
        )
        self.tags = [] if tags is None else tags  # as given (Airflow 2 keeps the list or tuple)
        self.tasks = DagTasks(self.tasks)  # Airflow's list of operators, still the table by task id
        self.params = DagParams(self.params)  # items read as values, as Airflow's ParamsDict
        self.dagrun_timeout = dagrun_timeout
        self._timetable_given = timetable
        self._schedule_given = schedule_interval if schedule is NOTSET and schedule_interval is not NOTSET else schedule
        self.is_paused_upon_creation = is_paused_upon_creation
        self.template_searchpath = (
            [template_searchpath] if isinstance(template_searchpath, str) else list(template_searchpath or [])
        )
        self.user_defined_macros = dict(user_defined_macros or {})
        self.owner_links = dict(owner_links or {})
        self.access_control = access_control
        self.dag_display_name = dag_display_name or dag_id

    def meta(self) -> FlowMeta:
        """The flow's metadata, marked so that a trigger puts the params in ``dag_run.conf`` and
        checks a conf against them, as Airflow's trigger form and ``create_dagrun`` do."""
        self._check_scheduled_params()
        meta = dataclasses.replace(super().meta(), tags=tuple(self.tags))
        return dataclasses.replace(meta, params_in_conf=True) if meta.params else meta

    def _check_scheduled_params(self) -> None:
        """Airflow refuses a DAG that is scheduled (by time or datasets) and has a param without
        a valid default: no run it schedules could be created. Loaded anyway, its scheduler
        logged "missing required parameter" at every poll and never ran it."""
        from ductwork.core.schedule import NoSchedule
        from ductwork.errors import DefinitionError

        if isinstance(self.schedule, NoSchedule) and self.asset_condition is None:
            return
        required = [name for name, param in self.params.items() if param.default is NO_DEFAULT]
        if required:
            names = ", ".join(map(repr, required))
            raise DefinitionError(
                f"DAG {self.flow_id!r} is scheduled and its param(s) {names} have no valid default, so no "
                'scheduled run could be created (Airflow: "DAG is not allowed to define a Schedule, if there '
                'are any required params without default values or default values are not valid"): give '
                "them a default their schema accepts, or schedule=None for a DAG triggered with its values"
            )

    # --- Airflow's names for Flow attributes --------------------------------------------------
    @property
    def dag_id(self) -> str:
        return self.flow_id

    @property
    def tags(self) -> Any:
        """The tags as the DAG file gave them (``["etl"]`` stays a list, which DAG integrity
        tests compare with ``==``), an empty list when it gave none, as Airflow 2's."""
        return self.__dict__.get("_tags", [])

    @tags.setter
    def tags(self, value: Any) -> None:
        self.__dict__["_tags"] = value

    @property
    def doc_md(self) -> str:
        return self.doc

    @doc_md.setter
    def doc_md(self, value: str | None) -> None:
        self.doc = value or ""

    @property
    def task_dict(self) -> dict[str, Any]:
        """The operators by task id, a plain dict (iterating it gives the ids, as Airflow's)."""
        return dict(self.tasks.items())

    @property
    def task_group(self) -> Any:
        """The DAG's root task group (``dag.task_group.children``, ``parent_group=dag.task_group``)."""
        from ..utils.task_group import RootTaskGroup

        root = self.__dict__.get("_root_group")
        if root is None:
            root = self.__dict__["_root_group"] = RootTaskGroup(self)
        return root

    @property
    def task_group_dict(self) -> dict[str, Any]:
        """The DAG's task groups by group id."""
        return dict(self.groups)

    @property
    def has_on_success_callback(self) -> bool:
        return bool(self.on_success_callback)

    @property
    def has_on_failure_callback(self) -> bool:
        return bool(self.on_failure_callback)

    @property
    def task_ids(self) -> list[str]:
        return list(self.tasks.keys())

    @property
    def task_count(self) -> int:
        return len(self.tasks)

    @property
    def roots(self) -> list[Any]:
        return [t for t in self.tasks.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[Any]:
        return [t for t in self.tasks.values() if not t.downstream_task_ids]

    @property
    def timezone(self) -> Any:
        return self.tz

    @property
    def schedule_interval(self) -> Any:
        """The schedule as the DAG file gave it (a cron string, a preset, a timedelta, None);
        Airflow 2's default, one day, when it gave none."""
        given = self.__dict__.get("_schedule_given", NOTSET)
        return ONE_DAY if given is NOTSET else given

    @property
    def timetable(self) -> Any:
        """The schedule as Airflow's timetable object (``dag.timetable.summary``,
        ``.next_dagrun_info(...)``): the one the DAG file gave, else the one Airflow makes of its
        schedule (``NullTimetable`` for ``None``, ``CronDataIntervalTimetable`` for a cron string
        or preset, ``DeltaDataIntervalTimetable`` for a timedelta and Airflow 2's default)."""
        given = self.__dict__.get("_timetable_given")
        return airflow_timetable(self.schedule_interval if given is None else given, timezone_name(self.tz))

    @property
    def concurrency(self) -> int | None:
        return self.max_active_tasks

    @property
    def full_filepath(self) -> str | None:
        return self.fileloc

    @property
    def folder(self) -> str | None:
        """The DAG file's folder (``os.path.join(dag.folder, "sql")`` finds files beside it)."""
        return os.path.dirname(self.fileloc) if self.fileloc else None

    @property
    def safe_dag_id(self) -> str:
        return self.flow_id.replace(".", "__dot__")

    def adapt_callback_context(self, context: Any) -> Any:
        """What Airflow gives a DAG's ``on_success_callback``/``on_failure_callback``: ``dag``,
        ``dag_run`` (with its state and conf), ``ti``/``task_instance`` (a failed task instance
        of a failed run, else the run's last), ``reason`` and the dates, besides Ductwork's own."""
        from .._dag_run import DagRunView, to_pendulum  # the class airflow.models.dagrun names

        logical = to_pendulum(context["logical_date"])
        dag_run = DagRunView(
            dag_id=self.flow_id,
            run_id=context["run_id"],
            run_type=context.get("run_type", "manual"),
            logical_date=logical,
            data_interval_start=to_pendulum(context["data_interval_start"]),
            data_interval_end=to_pendulum(context["data_interval_end"]),
            conf=dict(context.get("conf") or {}),
            dag=self,
            external_trigger=context.get("run_type") == "manual",
            state=context["run_state"],
            store=_callback_store(context),
        )
        ds = logical.strftime("%Y-%m-%d")
        # Airflow builds a DAG callback's context from a task instance of the run: callbacks
        # that alert read context["ti"] / ["task_instance"] (task_id, log_url), a KeyError here
        ti = dag_run.callback_task_instance()
        return context.with_values(
            ti=ti,
            task_instance=ti,
            dag=self,
            dag_run=dag_run,
            ds=ds,
            ds_nodash=ds.replace("-", ""),
            ts=logical.isoformat(),
            execution_date=logical,
            run_id=context["run_id"],
        )

    def has_task(self, task_id: str) -> bool:
        return task_id in self.tasks

    def topological_sort(self, include_subdag_tasks: bool = False) -> list[Any]:
        """The operators, each after all of its upstream tasks (in the order they were defined
        among those that are free to go), as Airflow's ``dag.topological_sort()``."""
        from ductwork.core.graph import topological

        order = topological({tid: op.to_node() for tid, op in self.tasks.items()}, where=f"DAG {self.flow_id!r}")
        return [self.tasks[tid] for tid in order]

    def _check_default_args(self) -> None:
        """Airflow applies the ``default_args`` an operator accepts and ignores the rest."""

    # --- running ----------------------------------------------------------------------------
    def test(
        self,
        execution_date: dt.datetime | None = None,
        run_conf: Mapping[str, Any] | None = None,
        conn_file_path: str | None = None,
        variable_file_path: str | None = None,
        use_executor: bool = False,
        mark_success_pattern: Any = None,
        session: Any = None,
        logical_date: dt.datetime | None = None,
    ) -> Any:
        """Run the whole DAG once in this process and print each task's log and state (Airflow's
        ``dag.test()``); returns the run as Airflow's ``DagRun`` (``.state`` is ``success`` or
        ``failed``, ``get_task_instance(task_id).state``, ``.xcom_pull()``). Connections and
        variables come from ``conn_file_path``/``variable_file_path`` first, as Airflow's local
        file backend reads them, then from the configured backends (the metadata database's too)."""
        from ductwork.compat.airflow._testing import run_dag_test

        return run_dag_test(
            self,
            logical_date or execution_date,
            run_conf,
            conn_file_path=conn_file_path,
            variable_file_path=variable_file_path,
        )

    def __repr__(self) -> str:
        return f"<DAG: {self.flow_id}>"


def _callback_store(context: Any) -> Any:
    """Where a DAG callback's ``dag_run.get_task_instances()`` reads the ended run: the summary
    of the run `ductwork run` just ended (exact, and nothing to read back), else the store the
    runtime lends, else the metadata database this process is configured for (the scheduler
    calls DAG callbacks in a child process, which has no store of its own)."""
    from ductwork.compat.airflow._dag_run import ConfiguredStore, SummaryStore

    summary = context.get("summary")
    if summary is not None and hasattr(summary, "task_states"):
        return SummaryStore(summary, context["logical_date"])
    return context.get("store") or ConfiguredStore()


def timetable_zone(schedule: Any) -> Any:
    """The timezone a timetable given as the schedule names (``CronDataIntervalTimetable(cron,
    timezone)``, also as the ``timetable`` of ``DatasetOrTimeSchedule``); ``None`` for a
    schedule without one (a cron string follows the start date's timezone)."""
    inner = getattr(schedule, "timetable", None)  # DatasetOrTimeSchedule's time part
    if inner is not None:
        return timetable_zone(inner)
    zone = getattr(schedule, "timezone", None)
    if zone is None or not callable(getattr(schedule, "ductwork_schedule", None)):
        return None
    return zone


def _utc_if_naive(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def airflow_timetable(given: Any, timezone: str) -> Any:
    """The timetable Airflow makes of a DAG's schedule (one given as a timetable is kept)."""
    from ..timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from ..timetables.simple import DatasetTriggeredTimetable, NullTimetable, OnceTimetable

    if callable(getattr(given, "ductwork_schedule", None)):
        return given
    if given is None:
        return NullTimetable()
    if is_asset_schedule(given):
        return DatasetTriggeredTimetable(given)
    if given == "@once":
        return OnceTimetable()
    if isinstance(given, dt.timedelta):
        return DeltaDataIntervalTimetable(given)
    return CronDataIntervalTimetable(str(given), timezone)


def dag_params(dag: Flow) -> dict[str, Any]:
    """The DAG's declared parameter defaults (what ``dag.params`` holds in Airflow)."""
    return {n: (None if p.default is NO_DEFAULT else p.default) for n, p in dag.params.items()}


__all__: Sequence[str] = ("DAG", "NOTSET")


def _paused_on_creation(asked: bool | None) -> bool:
    """The DAG's ``is_paused_upon_creation``, else Airflow's own setting when the environment
    carries it (``AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION``, as a deployment moved from
    Airflow does), else unpaused: Ductwork's default, which differs from Airflow's (README)."""
    if asked is not None:
        return bool(asked)
    setting = os.environ.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "").strip().lower()
    return setting in ("1", "true", "yes", "on")
