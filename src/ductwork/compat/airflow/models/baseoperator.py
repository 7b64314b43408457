"""``airflow.models.baseoperator``: Airflow's operator arguments over Ductwork's ``BaseOperator``.

``AirflowOperatorMixin`` takes the arguments Airflow's ``BaseOperator`` takes and hands Ductwork
what they mean: ``dag`` is the flow, ``doc_md`` the task's documentation, ``email`` with
``email_on_failure``/``email_on_retry`` the task's failure and retry e-mails (through the
``smtp_default`` connection), ``params`` task-level parameters, Airflow's trigger-rule aliases
their current names. Arguments with no effect under Ductwork are accepted and recorded for
``ductwork doctor``; the few that would change what a run does are refused (``features``).
Every shimmed operator (``BashOperator``, ``PythonOperator``...) and every user operator that
subclasses ``BaseOperator`` gets this.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ductwork.compat.airflow.utils.log.logging_mixin import task_logger
from ductwork.compat.features import refuse
from ductwork.core import operators as core_ops
from ductwork.core.assets import Asset
from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator as CoreBaseOperator
from ductwork.core.operators.base import chain, cross_downstream, set_dependency
from ductwork.core.operators.empty import EmptyOperator as _CoreEmpty
from ductwork.core.signals import SkipTask
from ductwork.core.xcom_arg import ParamRef, XComArg
from ductwork.errors import TaskExecutionError

# Relative: under the ``airflow`` name these are the modules a DAG file imports (airflow.exceptions,
# airflow._context), so that its isinstance checks hold (AirflowTaskTimeout, TaskInstance, DagRun).
from .._context import airflow_context
from .._dag_run import to_pendulum
from ..exceptions import AirflowTaskTimeout

DEFAULT_OWNER = "airflow"
"""A task's owner when neither it nor ``default_args`` names one (Airflow's default)."""

_RULE_ALIASES = {
    "none_failed_or_skipped": "none_failed_min_one_success",
    "dummy": "always",
    "all_done_setup_success": "all_done_min_one_success",
}


def _addresses(email: str | Iterable[str] | None) -> tuple[str, ...]:
    if not email:
        return ()
    if isinstance(email, str):
        return tuple(a.strip() for a in email.replace(";", ",").split(",") if a.strip())
    return tuple(email)


class _CalledInState:
    """An Airflow task callback, called with the state its try ended in: Airflow sets the task
    instance's state before it calls ``on_failure_callback`` (``failed``), ``on_retry_callback``
    (``up_for_retry``) or ``on_success_callback`` (``success``), and a callback shared by all
    three tells them apart by ``context["ti"].state`` (it said ``running`` in each)."""

    __slots__ = ("callback", "state")

    def __init__(self, callback: Any, state: str) -> None:
        self.callback = callback
        self.state = state

    def __call__(self, context: Any) -> Any:
        ti = context.get("task_instance")
        if ti is not None and hasattr(ti, "state"):
            ti.state = self.state
            if self.state != "running" and hasattr(ti, "end_date"):
                ti.end_date = to_pendulum(dt.datetime.now(dt.UTC))
        dag_run = context.get("dag_run")
        if dag_run is not None and hasattr(dag_run, "current_state"):
            dag_run.current_state = self.state
        timeout = _as_task_timeout(context.get("exception"))
        if timeout is not None and hasattr(context, "with_values"):
            context = context.with_values(exception=timeout)
        return self.callback(context)

    def __repr__(self) -> str:
        return repr(self.callback)


def _as_task_timeout(exc: Any) -> Exception | None:
    """Airflow's ``AirflowTaskTimeout`` for a try stopped at its ``execution_timeout`` (the
    engine says ``timed out after Ns``; Celery raises ``SoftTimeLimitExceeded``), so that a
    callback's ``isinstance(context["exception"], AirflowTaskTimeout)`` holds; None otherwise."""
    if isinstance(exc, AirflowTaskTimeout) or not isinstance(exc, BaseException):
        return None
    timed_out = isinstance(exc, TaskExecutionError) and str(exc).startswith("timed out after")
    if not timed_out and type(exc).__name__ != "SoftTimeLimitExceeded":
        return None
    timeout = AirflowTaskTimeout(str(exc) or "timed out")
    timeout.__cause__ = exc
    return timeout


def _in_state(callbacks: Any, state: str) -> Any:
    """Each of ``callbacks`` (one, a list, or None) called with ``state`` (``_CalledInState``)."""
    if callbacks is None:
        return None
    if isinstance(callbacks, list | tuple):
        return [_CalledInState(c, state) for c in callbacks]
    return _CalledInState(callbacks, state)


class BaseOperator(CoreBaseOperator):
    """Airflow's ``BaseOperator``: its ``__init__`` arguments, translated for Ductwork's.
    Subclass it and implement ``execute(self, context)``, as in Airflow. Every shimmed operator
    derives from it (as ``AirflowOperatorMixin``), so ``isinstance(task, BaseOperator)`` holds
    for them as in Airflow."""

    template_ext: Sequence[str] = ()
    """Extensions of template files (Airflow's); an instance may set its own (``templates_exts``)."""
    ui_fgcolor: ClassVar[str] = "#000"

    def __init__(
        self,
        *,
        task_id: str,
        dag: Any = None,
        task_group: Any = None,
        owner: str = DEFAULT_OWNER,
        email: str | Iterable[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int | None = None,
        retry_delay: dt.timedelta | float = 300.0,
        retry_exponential_backoff: bool = False,
        max_retry_delay: dt.timedelta | float | None = None,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        params: Mapping[str, Any] | None = None,
        default_args: Mapping[str, Any] | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str = "default",
        pool: str | None = None,
        pool_slots: int = 1,
        sla: dt.timedelta | None = None,
        execution_timeout: dt.timedelta | float | None = None,
        on_execute_callback: Any = None,
        on_failure_callback: Any = None,
        on_success_callback: Any = None,
        on_retry_callback: Any = None,
        on_skipped_callback: Any = None,
        pre_execute: Any = None,
        post_execute: Any = None,
        trigger_rule: str = "all_success",
        resources: Mapping[str, Any] | None = None,
        run_as_user: str | None = None,
        task_concurrency: int | None = None,
        map_index_template: str | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        executor: str | None = None,
        executor_config: Mapping[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets: Any = None,
        outlets: Any = None,
        task_display_name: str | None = None,
        logger_name: str | None = None,
        allow_nested_operators: bool = True,
        doc: str | None = None,
        doc_md: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        **kwargs: Any,
    ) -> None:
        if run_as_user:
            refuse(f"{type(self).__name__}(run_as_user=...)", "tasks run as the worker's user")
        if wait_for_downstream:
            refuse(f"{type(self).__name__}(wait_for_downstream=True)", "only depends_on_past is supported")
        if executor:
            refuse(f"{type(self).__name__}(executor=...)", "one executor per scheduler")
        rule = str(getattr(trigger_rule, "value", trigger_rule))
        upstream_refs = []
        for name in type(self).template_fields:
            value = kwargs.get(name)
            if isinstance(value, XComArg):
                # A task output given to a templated field draws the edge and becomes its value
                # when the task runs (core.templating), as in Airflow.
                upstream_refs.append(value.operator)
            elif isinstance(value, ParamRef):
                kwargs[name] = str(value)  # a @dag argument: rendered from the run's params
        super().__init__(
            task_id=task_id,
            flow=dag,
            task_group=task_group,
            retries=retries,
            retry_delay=retry_delay,
            retry_exponential_backoff=retry_exponential_backoff,
            max_retry_delay=max_retry_delay,
            execution_timeout=execution_timeout,
            trigger_rule=_RULE_ALIASES.get(rule, rule),
            priority_weight=priority_weight,
            pool=pool or "default_pool",
            pool_slots=pool_slots,
            queue=queue,
            depends_on_past=depends_on_past,
            owner=owner,
            doc=doc_md or doc or doc_rst or doc_json or doc_yaml or "",
            do_xcom_push=do_xcom_push,
            on_execute_callback=_in_state(on_execute_callback, "running"),
            on_success_callback=_in_state(on_success_callback, "success"),
            on_failure_callback=_in_state(on_failure_callback, "failed"),
            on_retry_callback=_in_state(on_retry_callback, "up_for_retry"),
            outlets=_datasets(outlets),
            inlets=_datasets(inlets),
            **kwargs,
        )
        for ref_op in upstream_refs:
            self.add_upstream(ref_op)  # type: ignore[arg-type]
        if rule == "all_done_setup_success":
            self.__dict__["rule_follows_setups"] = True  # all_done without a setup upstream (to_node)
        addresses = _addresses(email)
        self.email = list(addresses)
        self.failure_email = addresses if email_on_failure else ()
        self.retry_email = addresses if email_on_retry else ()
        given = {**_inherited_params(self, default_args), **(params or {})}
        self.task_params = {n: getattr(v, "value", v) for n, v in given.items()}
        self._doc_md = doc_md
        self.start_date = start_date
        self.end_date = end_date
        self.map_index_template = map_index_template
        self.multiple_outputs = multiple_outputs
        self.task_display_name = task_display_name or task_id
        self.weight_rule = weight_rule
        self.executor_config = dict(executor_config or {})
        self._logger_name = logger_name
        # Kept as given, for the DAG tests that read them (Ductwork ignores them, README).
        self.email_on_failure = email_on_failure
        self.email_on_retry = email_on_retry
        self.sla = sla
        self.max_active_tis_per_dag = max_active_tis_per_dag or task_concurrency
        self.max_active_tis_per_dagrun = max_active_tis_per_dagrun
        self.ignore_first_depends_on_past = ignore_first_depends_on_past
        self.wait_for_past_depends_before_skipping = wait_for_past_depends_before_skipping
        self.wait_for_downstream = False  # True is refused above
        self.run_as_user = None  # likewise
        self._pre_execute_hook = pre_execute
        self._on_skipped = _callables(on_skipped_callback)
        self._post_execute_hook = post_execute

    @property
    def log(self) -> logging.Logger:
        """``self.log`` of an operator (Airflow's ``airflow.task.operators.<module>.<class>``, or
        ``logger_name``): what it logs at INFO and above is in the try's log."""
        own = self.__dict__.get("_logger_name")
        cls = type(self)
        return task_logger(f"airflow.task.operators.{own or f'{cls.__module__}.{cls.__name__}'}")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = getattr(cls, "execute", None)
        # The do-nothing EmptyOperator keeps its own execute: that is how a run knows that it
        # need not hand it to a worker (core.operators.empty).
        if execute is not None and not getattr(execute, "_airflow_steps", False) and execute is not _CoreEmpty.execute:
            setattr(cls, "execute", _with_airflow_steps(execute))  # noqa: B010

    def pre_execute(self, context: Any) -> None:
        """Called before ``execute`` (a subclass may override it, as in Airflow); calls the
        ``pre_execute=`` callable given to the operator."""
        hook = self.__dict__.get("_pre_execute_hook")
        if hook is not None:
            hook(context)

    def post_execute(self, context: Any, result: Any = None) -> None:
        """Called after ``execute`` with its result (a subclass may override it, as in
        Airflow); calls the ``post_execute=`` callable given to the operator."""
        hook = self.__dict__.get("_post_execute_hook")
        if hook is not None:
            hook(context, result)

    # --- Airflow's names ----------------------------------------------------------------------
    @property
    def dag(self) -> Any:
        return self.flow

    @dag.setter
    def dag(self, value: Any) -> None:
        if value is not None and self.flow is None:
            self.flow = value
            value.add_task(self)

    @property
    def doc_md(self) -> str | None:
        return self.__dict__.get("_doc_md")

    @doc_md.setter
    def doc_md(self, value: str | None) -> None:
        """``task.doc_md = "..."`` after creation, as Airflow's tutorial does."""
        self.__dict__["_doc_md"] = value
        self.doc = value or ""

    @property
    def params(self) -> Any:
        """``task.params``: the DAG's params with the task's own (and ``default_args``') over
        them, as Airflow merges them when the task joins its DAG; a run's values are the
        context's ``params``."""
        from ductwork.compat.airflow.models.dag import dag_params
        from ductwork.compat.airflow.models.param import ParamsDict
        from ductwork.core.flow import Flow

        merged = dag_params(self.flow) if isinstance(self.flow, Flow) else {}
        merged.update(self.__dict__.get("task_params") or {})
        return ParamsDict(merged)

    @params.setter
    def params(self, value: Mapping[str, Any] | None) -> None:
        self.task_params = {n: getattr(v, "value", v) for n, v in (value or {}).items()}

    @property
    def task_type(self) -> str:
        """The operator's class name, as Airflow shows it (``BashOperator``)."""
        return type(self).__name__

    @property
    def operator_name(self) -> str:
        return str(getattr(self, "custom_operator_name", None) or self.task_type)

    @property
    def dag_id(self) -> str | None:
        return self.flow.flow_id if self.flow is not None else None

    @property
    def label(self) -> str:
        return self.task_id.rsplit(".", 1)[-1]

    @property
    def upstream_list(self) -> list[CoreBaseOperator]:
        return super().upstream_list

    def get_direct_relatives(self, upstream: bool = False) -> list[CoreBaseOperator]:
        return self.upstream_list if upstream else self.downstream_list

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def get_flat_relative_ids(self, upstream: bool = False) -> set[str]:
        """Every task above (``upstream``) or below this one, however far."""
        tasks = self.flow.tasks if self.flow is not None else {}
        found: set[str] = set()
        todo = list(self.get_direct_relative_ids(upstream))
        while todo:
            task_id = todo.pop()
            if task_id not in found:
                found.add(task_id)
                todo.extend(tasks[task_id].get_direct_relative_ids(upstream) if task_id in tasks else ())
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[CoreBaseOperator]:
        tasks = self.flow.tasks if self.flow is not None else {}
        return [tasks[t] for t in self.get_flat_relative_ids(upstream) if t in tasks]

    def adapt_context(self, context: TaskContext) -> TaskContext:
        """Airflow's template variables for this task's tries; template files (a field ending
        in one of ``template_ext``, such as ``script.sh``) are read here, as Airflow does."""
        self._resolve_template_files()
        return airflow_context(context, self)

    def _resolve_template_files(self) -> None:
        """Airflow reads a templated string that ends in one of ``template_ext`` as a template
        file, also inside a list or dict (``templates_dict``); a string ending in a space
        (``"run.sh "``) is how a DAG says that it is not one."""
        if not self.template_ext or self.__dict__.get("_template_files_read"):
            return
        self.__dict__["_template_files_read"] = True
        folders = [*getattr(self.flow, "template_searchpath", []), *_flow_folder(self.flow)]
        for name in self.template_fields:
            value = getattr(self, name, None)
            read = self._read_template_files(value, folders, name)
            if read is not value:
                setattr(self, name, read)

    def _read_template_files(self, value: Any, folders: Sequence[str], field: str) -> Any:
        """``value`` with each template file it names replaced by a ``TemplateFile``; ``value``
        itself when it names none."""
        if isinstance(value, TemplateFile):
            return value
        if isinstance(value, str):
            if not value.endswith(tuple(self.template_ext)):
                return value
            path = _template_path(value, folders)
            if path is None:  # Airflow's TemplateNotFound when it renders, not the name as the text
                return MissingTemplateFile.named(value, folders, task_id=self.task_id, field=field)
            return TemplateFile.read(path, task_id=self.task_id, field=field)
        if type(value) in (list, tuple):
            items = [self._read_template_files(v, folders, field) for v in value]
            changed = any(a is not b for a, b in zip(items, value, strict=True))
            return type(value)(items) if changed else value
        if type(value) is dict:
            pairs = {k: self._read_template_files(v, folders, field) for k, v in value.items()}
            return pairs if any(pairs[k] is not value[k] for k in value) else value
        return value

    def render_template(
        self, content: Any, context: Mapping[str, Any], jinja_env: Any = None, seen_oids: Any = None
    ) -> Any:
        """``content`` rendered with ``context`` (Airflow's method: ``self.render_template(self.sql,
        context)`` in an ``execute``, ``context["task"].render_template(...)`` in a ``@task``):
        strings inside lists, tuples and dicts too, and a string ending in one of ``template_ext``
        is the template file it names."""
        from ductwork.core.templating import render_value

        folders = [*getattr(self.flow, "template_searchpath", []), *_flow_folder(self.flow)]
        content = self._read_template_files(content, folders, "render_template")
        return render_value(content, context, task_id=self.task_id, field="render_template")

    def render_template_fields(self, context: Mapping[str, Any], jinja_env: Any = None) -> None:
        """Render this operator's templated fields in place (Airflow's method, for operators that
        call it themselves)."""
        from ductwork.core.templating import render_value

        for name in self.template_fields:
            setattr(self, name, render_value(getattr(self, name, None), context, task_id=self.task_id, field=name))

    def extra_spec(self) -> dict[str, Any]:
        spec = super().extra_spec()
        if self.doc_md:
            spec["doc_md"] = self.doc_md
        return spec


def _inherited_params(task: CoreBaseOperator, default_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``params`` of the ``default_args`` of the task's DAG, task group and the task itself,
    the later winning (as Airflow merges ``default_args``); the task's own ``params`` go on top."""
    merged: dict[str, Any] = {
        **(getattr(task.flow, "default_args", None) or {}),
        **(getattr(task.task_group, "default_args", None) or {}),
        **(default_args or {}),
    }
    return dict(merged.get("params") or {})


def _with_airflow_steps(execute: Any) -> Any:
    """``execute`` as Airflow's task runner calls it: ``pre_execute(context)`` first, then
    ``execute``, then each key of a dict result pushed as its own XCom when the operator has
    ``multiple_outputs=True`` (Airflow 2.9's for any operator), then ``post_execute(context,
    result)``. An ``execute`` that calls its parent's (``super().execute(context)``) takes these
    steps once, around the outermost call."""

    @functools.wraps(execute)
    def run(self: Any, context: Any) -> Any:
        if self.__dict__.get("_airflow_executing"):
            return execute(self, context)
        self.__dict__["_airflow_executing"] = True
        try:
            self.pre_execute(context)
            try:
                result = execute(self, context)
            except SkipTask:
                _call_skipped_callbacks(self, context)
                raise
            _push_outputs(self, result, context)
            self.post_execute(context, result)
            return result
        finally:
            self.__dict__["_airflow_executing"] = False

    run._airflow_steps = True  # type: ignore[attr-defined]
    return run


def _callables(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _call_skipped_callbacks(op: Any, context: Any) -> None:
    """Airflow 2.9's ``on_skipped_callback``: called when the task raises
    ``AirflowSkipException`` (not when a branch or a trigger rule skips it); a callback that
    fails is logged, the skip stands."""
    for callback in op.__dict__.get("_on_skipped") or ():
        try:
            callback(context)
        except Exception:
            logging.getLogger("ductwork.task").exception("skipped callback %r failed", callback)


def _push_outputs(op: Any, result: Any, context: Any) -> None:
    if not getattr(op, "multiple_outputs", False) or result is None or not getattr(op, "do_xcom_push", True):
        return
    if not isinstance(result, Mapping):
        from ductwork.errors import TaskExecutionError

        raise TaskExecutionError(
            f"task {op.task_id!r} has multiple_outputs=True but returned {type(result).__name__}, not a dict"
        )
    for key, value in result.items():
        if not isinstance(key, str):
            from ductwork.errors import TaskExecutionError

            raise TaskExecutionError(f"task {op.task_id!r}: multiple_outputs keys must be strings, got {key!r}")
        context["ti"].xcom_push(key, value)


AirflowOperatorMixin = BaseOperator
"""The name the shim's operators use for their Airflow base (first in their bases, before the
Ductwork operator whose behaviour they take)."""


class TemplateFile(str):
    """A templated value read from a template file: its text, rendered like any template
    string, except that a rendering error names the file."""

    path: str = ""
    task_id: str = ""
    field: str = ""

    @classmethod
    def read(cls, path: str, *, task_id: str, field: str) -> TemplateFile:
        with open(path, encoding="utf-8") as fh:
            made = cls(fh.read())
        made.path, made.task_id, made.field = path, task_id, field
        return made

    def resolve_template(self, context: Mapping[str, Any]) -> str:
        from ductwork.core.templating import render_string

        return render_string(self, context, task_id=self.task_id, field=self.field, file=self.path)


class MissingTemplateFile(TemplateFile):
    """A templated value that ends in one of the operator's ``template_ext`` but names no file
    beside the DAG file or in its ``template_searchpath``. Airflow fails the try when it renders
    it (``TemplateNotFound``); taking the name as the text instead ran ``missing.sh`` as a
    command ("command not found") or handed ``sql/q.sql`` to a callable as its query."""

    folders: tuple[str, ...] = ()

    @classmethod
    def named(cls, name: str, folders: Sequence[str], *, task_id: str, field: str) -> MissingTemplateFile:
        made = cls(name)
        made.task_id, made.field, made.folders = task_id, field, tuple(folders)
        return made

    def resolve_template(self, context: Mapping[str, Any]) -> str:
        from ductwork.errors import TemplateError

        where = ", ".join(self.folders) or "no folder (the DAG has no file)"
        raise TemplateError(
            f"task {self.task_id!r}, field {self.field!r}: template file {str(self)!r} not found (looked in {where}); "
            f"as in Airflow, a value ending in one of the operator's template_ext names a template file: "
            f"end it with a space ({str(self) + ' '!r}) to use it as it is"
        )


def _template_path(name: str, folders: Sequence[str]) -> str | None:
    """The first of ``folders`` holding the file ``name`` (an absolute ``name`` as it is)."""
    for folder in folders:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _flow_folder(flow: Any) -> list[str]:
    fileloc = getattr(flow, "fileloc", None)
    return [os.path.dirname(os.path.abspath(fileloc))] if fileloc else []


def chain_linear(*elements: Any) -> None:
    """Every element upstream of the whole next one (lists are fully connected)."""
    for left, right in itertools.pairwise(elements):
        set_dependency(left, right)


def cross_downstream_(from_tasks: Sequence[Any], to_tasks: Sequence[Any]) -> None:
    cross_downstream(from_tasks, to_tasks)


EmptyOperatorBase = core_ops.EmptyOperator

__all__ = ["BaseOperator", "chain", "chain_linear", "cross_downstream"]


def _datasets(value: Any) -> list[Asset]:
    """The datasets/assets among ``inlets=``/``outlets=``; other lineage objects (Airflow's
    ``File``, ``Table``...) only fed its lineage backends and are left out."""
    items = value if isinstance(value, list | tuple | set) else ([value] if value is not None else [])
    return [item for item in items if isinstance(item, Asset)]
