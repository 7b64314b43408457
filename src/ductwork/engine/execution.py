"""Running one try of one task: the code every executor calls on the executing side.

``execute_try`` renders the templated fields, calls the callbacks and ``execute``, pushes the
result, and classifies what happened into a ``TryOutcome``: success, skip, failure (with the
retry decision already made, because only the executing side may call the user's retry or
failure callbacks), reschedule, or new dynamic dependencies. It never raises for task errors.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ductwork.core import log_lines
from ductwork.core.assets import OutletEvents
from ductwork.core.class_flow import Unplanned, compile_tasks
from ductwork.core.clock import Clock
from ductwork.core.context import (
    RunInfo,
    TaskContext,
    TaskInstance,
    build_context,
    reset_current_context,
    set_current_context,
)
from ductwork.core.events import TryOutcome
from ductwork.core.executable import Executable
from ductwork.core.graph import NodeSpec
from ductwork.core.masking import MASKER
from ductwork.core.results import RETURN_VALUE, MemoryResults, ResultBackend
from ductwork.core.signals import (
    DynamicDependencies,
    ExpandNodes,
    FailNow,
    InstancesFailed,
    MissingInput,
    RescheduleTask,
    SkipTask,
)
from ductwork.core.states import TaskState
from ductwork.core.task_services import TaskServices
from ductwork.core.templating import render_value
from ductwork.core.xcom_arg import find_refs
from ductwork.engine import logcapture
from ductwork.engine.rules import after_failure
from ductwork.engine.rules import max_tries as default_max_tries
from ductwork.errors import DuctworkError, TaskExecutionError, TryInterrupted, TryStopped, TryTimedOut

task_logger = logging.getLogger("ductwork.task")


_PLAIN_COPY: dict[type, bool] = {}


def shallow_copy(obj: Any) -> Any:
    """``copy.copy(obj)``, without its generic machinery (``__reduce_ex__``, ``copyreg``) for a
    class that changes nothing of it, as operators do: a new instance with the same attributes.
    Half the time of ``copy.copy`` for an operator, once per try."""
    cls: Any = type(obj)
    plain = _PLAIN_COPY.get(cls)
    if plain is None:
        plain = _PLAIN_COPY[cls] = (
            getattr(cls, "__copy__", None) is None
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and cls.__getstate__ is object.__getstate__
            and getattr(cls, "__setstate__", None) is None
            and not any("__slots__" in vars(klass) for klass in cls.__mro__)
            and hasattr(obj, "__dict__")
        )
    if not plain:
        return copy.copy(obj)
    new = cls.__new__(cls)
    new.__dict__.update(obj.__dict__)
    return new


def _render(executable: Executable, context: TaskContext) -> tuple[Executable, dict[str, Any]]:
    """A shallow copy of the executable with its template fields rendered (the definition
    itself is never modified, so one operator object can serve many runs)."""
    fields = tuple(getattr(executable, "template_fields", ()) or ())
    if not fields:
        return executable, {}
    rendered_op = shallow_copy(executable)
    rendered: dict[str, Any] = {}
    for name in fields:
        value = getattr(executable, name, None)
        if value is None or ((type(value) is list or type(value) is dict) and not value):
            # Nothing to render (a @task's op_kwargs and templates_dict, most often): a fresh
            # empty container, so that execute() cannot change the definition's.
            rendered[name] = None if value is None else type(value)()
            if value is not None:
                setattr(rendered_op, name, type(value)())
            continue
        new = render_value(value, context, task_id=executable.task_id, field=name)
        setattr(rendered_op, name, new)
        shown = (
            render_value(value, context, task_id=executable.task_id, field=name, keep_refs=True)
            if find_refs(value)
            else new
        )  # other tasks' outputs are recorded as references, not copied
        rendered[name] = MASKER.mask_value(plain(shown))  # recorded with the try: never a secret
    return rendered_op, rendered


def _note(sink: logcapture.TrySink, message: str) -> None:
    """One of the engine's own lines in the try's log (start, success), in the format of the
    log records around it; written directly, since every try writes them and they need none of
    logging's machinery (levels, handlers, the caller's frame)."""
    sink.write(f"[{log_lines.stamp()}] INFO ductwork.task: {message}\n")


def begin_try(
    sink: logcapture.TrySink,
    *,
    node: NodeSpec,
    run: RunInfo,
    try_number: int,
    results: ResultBackend,
    max_tries: int | None = None,
    resumed: bool = False,
) -> None:
    """What a try does before any user code: the engine's start line in its log, and (unless
    it resumes after a reschedule) the results of earlier tries cleared. An executor that calls
    it itself (``execute_try(..., begun=True)``) learns of a full disk or a database that is
    down before the try counts; errors here are the platform's, never the task's."""
    limit = max_tries if max_tries is not None else default_max_tries(node)
    _note(sink, f"starting {node.task_id}, try {try_number} of {limit}")
    if not resumed and try_number > 1:
        # What an earlier try pushed must not leak into this one (a first try has nothing: a
        # manual clear deletes the results of the tries it clears).
        results.clear(run.key, node.task_id)


def plain(value: Any) -> Any:
    """A rendered value as JSON-friendly data for the record (references to other tasks'
    outputs show as their template, dates as ISO text, other objects as their repr). A float
    that JSON cannot hold (NaN, infinity) is its text: stored as a number, it made the asset
    event or rendered field unreadable JSON, shown as null."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    from ductwork.core.xcom_arg import ParamRef, XComArg

    if isinstance(value, XComArg | ParamRef):
        return str(value)
    return repr(value)


def render_fields(executable: Any, context: TaskContext) -> dict[str, Any]:
    """The template fields of ``executable`` rendered against ``context``, secrets masked, without
    running anything (``ductwork tasks render``)."""
    fields = tuple(getattr(executable, "template_fields", ()) or ())
    out: dict[str, Any] = {}
    for name in fields:
        value = render_value(getattr(executable, name, None), context, task_id=executable.task_id, field=name)
        out[name] = MASKER.mask_value(plain(value))
    return out


def _run_callbacks(callbacks: Sequence[Callable[[TaskContext], Any]], context: TaskContext, kind: str) -> None:
    for callback in callbacks:
        try:
            callback(context)
        except (Exception, SystemExit):  # sys.exit() in a callback: the try's outcome stands
            task_logger.exception("%s callback %r failed", kind, callback)


def execute_try(
    executable: Executable,
    *,
    node: NodeSpec,
    run: RunInfo,
    try_number: int,
    results: ResultBackend,
    downstream: Sequence[str],
    clock: Clock,
    sink: logcapture.TrySink,
    on_started: Callable[[Executable, dict[str, Any]], None] | None = None,
    max_tries: int | None = None,
    resumed: bool = False,
    services: TaskServices | None = None,
    begun: bool = False,
) -> TryOutcome:
    """Run ``executable`` once and describe the outcome; task errors never escape.

    A fresh try starts without the results of earlier tries; a try ``resumed`` after a
    reschedule keeps them (a sensor's state lives there). ``services`` (connections and
    variables, the store, the failure e-mail) are put in the task context. ``begun``: the
    caller has called ``begin_try`` already.
    """
    started = clock.now()
    t0 = time.monotonic()
    pid = os.getpid()
    limit = max_tries if max_tries is not None else default_max_tries(node)
    ti = TaskInstance(run, node.task_id, try_number, limit, results, downstream)
    ti.result_serializer = getattr(executable, "result_serializer", None)
    services = services or TaskServices()
    with logcapture.capture(sink):
        extra = {**services.context_values(), "clock": clock}
        context = build_context(run, ti, executable, log=task_logger, extra=extra)
        adapt = getattr(executable, "adapt_context", None)
        if adapt is not None:  # an operator may add names to its context (the Airflow shim's)
            context = adapt(context)
        token = set_current_context(context)
        current = context  # what get_current_context() gives the task, which it may write to
        rendered: dict[str, Any] = {}
        try:
            if not begun:
                begin_try(
                    sink, node=node, run=run, try_number=try_number, results=results, max_tries=limit, resumed=resumed
                )
            prepared, rendered = _render(executable, context)
            if on_started is not None:
                on_started(prepared, rendered)
            outlets = OutletEvents(list(getattr(prepared, "outlets", ()) or ()))
            context = context.with_values(task=prepared, outlet_events=outlets)
            if node.extra.get("cache"):
                cached = _check_cache(prepared, node, context, services, results, sink, original=executable, ti=ti)
                if cached is not None:
                    reused = getattr(prepared, "on_reused", None)
                    if reused is not None:  # a mapped instance tells its collector it succeeded
                        reused(context)
                    _note(sink, f"{node.task_id} is up to date: reused the results of run {cached}")
                    return TryOutcome(
                        TaskState.SUCCESS,
                        started,
                        clock.now(),
                        rendered=rendered,
                        result_keys=tuple(dict.fromkeys(ti.pushed_keys)),
                        reused_from=cached,
                    )
            _run_callbacks(prepared.on_execute_callback, context, "execute")
            try:
                value = prepared.execute(context)
            except SystemExit as exc:
                leave_if_forked(pid)
                if exc.code not in (0, None):
                    raise
                value = None  # sys.exit(0) or sys.exit(): a success, as in Airflow
            except BaseException:
                leave_if_forked(pid)
                raise
            leave_if_forked(pid)
            if value is not None and prepared.do_xcom_push:
                ti.xcom_push(RETURN_VALUE, value)
            _record_cache(services, ti, succeeded=True)
            _run_callbacks(prepared.on_success_callback, context, "success")
            try:
                _note(sink, f"{node.task_id} succeeded in {time.monotonic() - t0:.3f}s")
            except OSError:  # the try succeeded: a log line that cannot be written changes nothing
                pass
            _label_map_index(executable, context, current, rendered)
            return TryOutcome(
                TaskState.SUCCESS,
                started,
                clock.now(),
                skip=tuple(sorted(ti.decision.skip)),
                skip_recursive=ti.decision.recursive,
                rendered=rendered,
                result_keys=tuple(dict.fromkeys(ti.pushed_keys)),
                asset_events={uri: plain(extra) for uri, extra in outlets.collected().items()},
            )
        except SkipTask as exc:
            task_logger.info("%s skipped: %s", node.task_id, exc)
            return TryOutcome(TaskState.SKIPPED, started, clock.now(), rendered=rendered)
        except RescheduleTask as exc:
            missing = isinstance(exc, MissingInput)
            at = exc.at if not missing else clock.now() + dt.timedelta(seconds=getattr(exc, "recheck", 60.0))
            if missing:
                task_logger.info("%s is missing: %s; pending, checked again at %s", node.task_id, exc, at.isoformat())
            else:
                task_logger.info("%s rescheduled to %s", node.task_id, at.isoformat())
            return TryOutcome(
                TaskState.UP_FOR_RESCHEDULE,
                started,
                clock.now(),
                next_try_at=at,
                rendered=rendered,
                missing=missing,
                error=str(exc) if missing else None,
            )
        except ExpandNodes as exc:
            task_logger.info("%s expands to %d more instance(s)", node.task_id, len(exc.nodes))
            return TryOutcome(
                TaskState.NONE, started, clock.now(), new_nodes=(*exc.nodes, exc.waiting), rendered=rendered
            )
        except DynamicDependencies as exc:
            broken: dict[str, Unplanned] = {}
            new_nodes, _ = compile_tasks(exc.tasks, broken=broken)
            if broken:  # a required task's complete() or requires() raised: this try fails, saying which
                unplanned = list(broken.values())
                said = "; ".join(u.message for u in unplanned)
                error = DuctworkError(f"{node.task_id} requires tasks that could not be planned: {said}")
                error.__cause__ = unplanned[0].error
                return _failed_try(
                    error, node, try_number, started, clock, context, executable, current, rendered, limit, services, ti
                )
            updated = replace(node, upstream=(*node.upstream, *(t.task_id for t in exc.tasks)))
            task_logger.info(
                "%s requires %d more task(s): %s", node.task_id, len(exc.tasks), ", ".join(t.task_id for t in exc.tasks)
            )
            return TryOutcome(
                TaskState.NONE,
                started,
                clock.now(),
                new_nodes=(*new_nodes.values(), updated),
                rendered=rendered,
            )
        except (Exception, SystemExit, KeyboardInterrupt, TryInterrupted) as exc:
            if isinstance(exc, KeyboardInterrupt) and _user_interrupt():
                raise  # Ctrl-C in `ductwork run`: the command stops, as the user asked
            if isinstance(exc, TryTimedOut | TryStopped):  # its executor decides what follows
                return TryOutcome(TaskState.FAILED, started, clock.now(), error=str(exc))
            return _failed_try(
                exc, node, try_number, started, clock, context, executable, current, rendered, limit, services, ti
            )
        finally:
            reset_current_context(token)


def _failed_try(
    exc: BaseException,
    node: NodeSpec,
    try_number: int,
    started: dt.datetime,
    clock: Clock,
    context: Any,
    executable: Any,
    current: Any,
    rendered: Any,
    limit: Any,
    services: Any,
    ti: Any,
) -> TryOutcome:
    """The outcome of a try that raised ``exc``: failed, or up for retry by its policy, with
    the task's failure (or retry) e-mail."""
    _record_cache(services, ti, succeeded=False)
    _label_map_index(executable, context, current, rendered)
    outcome = _failure(exc, node, try_number, started, clock, context, executable, rendered, limit)
    if outcome.state == TaskState.FAILED and not isinstance(exc, InstancesFailed):
        _failure_email(executable, context.with_values(exception=exc), services)
    elif outcome.state == TaskState.UP_FOR_RETRY and bool(getattr(executable, "retry_email", None)):
        _failure_email(executable, context.with_values(exception=exc), services, retry=True)
    return outcome


RENDERED_MAP_INDEX = "rendered_map_index"
"""The key of a mapped instance's label (``map_index_template``) among its try's rendered fields."""


def _label_map_index(executable: Any, context: TaskContext, current: TaskContext, rendered: dict[str, Any]) -> None:
    """Airflow's ``map_index_template``: a mapped instance's label, rendered once its try has
    run (it may name what the task put in its context: ``get_current_context()["x"] = ...``),
    kept with the try's rendered fields, where the CLI, the API and the web UI show it."""
    template = getattr(executable, "map_index_template", None)
    if not template or not isinstance(template, str):
        return
    try:
        values = {**dict(context.items()), **dict(current.items())}
        label = render_value(template, TaskContext(values), task_id=executable.task_id, field="map_index_template")
    except Exception as exc:  # a label that cannot be rendered changes nothing about the try
        task_logger.warning("%s: map_index_template could not be rendered: %s", executable.task_id, exc)
        return
    if label not in (None, ""):
        rendered[RENDERED_MAP_INDEX] = MASKER.mask(str(label))


def _check_cache(
    executable: Executable,
    node: NodeSpec,
    context: TaskContext,
    services: TaskServices,
    results: ResultBackend,
    sink: logcapture.TrySink,
    *,
    original: Executable | None = None,
    ti: TaskInstance,
) -> str | None:
    """``cache="content"``: the run whose results this try reused (it is up to date), or None
    (it runs; what changed is noted in its log and recorded for ``ductwork why``). ``ti``: the
    try's own task instance (the context's may be a mapped group instance's view of it)."""
    from ductwork.engine import caching

    if services.cache is None:
        _note(sink, f"{node.task_id} has cache={node.extra['cache']!r}; this runtime keeps no fingerprints: running")
        return None
    from ductwork.core.versioning import Change

    found = caching.check(executable, node, context, services.cache, original=original)
    if found.match is None:
        _note(sink, f"{node.task_id}: {found.explain()}")
        ti.cache_check = found
        return None
    gone = caching.missing_outlet(getattr(executable, "outlets", ()) or ())
    if gone is not None:
        why = Change("outputs", gone, "gone")
    elif found.match.run_id == ti.run_id:
        # Its own earlier try in this run: it was cleared to run again. A task that returns
        # nothing has no results for the clear to delete, and it reused its own try instead.
        why = Change("results", found.match.run_id, "cleared")
    elif caching.reuse(found, ti, results):
        caching.record(services.cache, found, ti, status=caching.REUSED, succeeded=True)
        return found.match.run_id
    else:
        # Recorded as the reason it ran (a non-JSON result ``ductwork run`` did not keep, a
        # serializer not configured here), rather than as a task with nothing to compare with.
        why = Change("results", found.match.run_id, "gone")
    found.previous, found.match = found.match, None
    found.changes = [why]
    _note(sink, f"{node.task_id}: running: {why.describe()}")
    ti.cache_check = found  # a try that runs records its fingerprint at its end
    return None


SIGINT_SEEN = threading.Event()
"""Set by a command's own SIGINT handler (``ductwork run``): a Ctrl-C really came."""


def leave_if_forked(pid: int) -> None:
    """The task forked and this is its child, back from the task's code: it ends here, without
    recording anything or running any clean-up of the process it was copied from (it went on as
    a second worker, or ran the rest of the flow, and the run hung)."""
    if os.getpid() != pid:
        os._exit(0)


def _user_interrupt() -> bool:
    """Whether a ``KeyboardInterrupt`` is the user's Ctrl-C: only in a process's main thread,
    when the command's handler saw SIGINT come (or, without such a handler, with Python's own).
    Raised by the task itself, in a thread, or in a worker (which ignores SIGINT), it is the
    task's own doing: a failure of the try like any other exception, as in Airflow."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return SIGINT_SEEN.is_set() or signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _record_cache(services: TaskServices, ti: TaskInstance, *, succeeded: bool) -> None:
    found = ti.cache_check
    store = services.cache
    if found is not None and store is not None:
        from ductwork.engine import caching

        caching.record(store, found, ti, status=caching.RAN, succeeded=succeeded)


def _failure(
    exc: BaseException,
    node: NodeSpec,
    try_number: int,
    started: dt.datetime,
    clock: Clock,
    context: TaskContext,
    executable: Executable,
    rendered: dict[str, Any],
    limit: int,
) -> TryOutcome:
    message = str(exc) if isinstance(exc, DuctworkError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, InstancesFailed):
        task_logger.error("%s failed: %s", node.task_id, exc)
        return TryOutcome(TaskState.FAILED, started, clock.now(), error=str(exc), rendered=rendered)
    if isinstance(exc, FailNow):
        message = f"failed without retry: {exc}"
    elif type(exc).__name__ == "SoftTimeLimitExceeded" and node.execution_timeout:
        # Celery's way of stopping a try at its execution_timeout on a remote worker: said as
        # every other executor says it, not as "SoftTimeLimitExceeded()".
        message = f"timed out after {node.execution_timeout:g}s"
    message = MASKER.mask(message)  # recorded with the try, shown in the UI
    # A try run in a process of its own (``engine.forked``) brings the traceback from there.
    tb = MASKER.mask(getattr(exc, "__ductwork_traceback__", None) or "".join(traceback.format_exception(exc)))
    task_logger.error("%s failed: %s\n%s", node.task_id, message, tb.rstrip())
    now = clock.now()
    state, next_at = after_failure(node, try_number, now, fail_now=isinstance(exc, FailNow), max_tries=limit)
    context = context.with_values(exception=exc)
    if state == TaskState.UP_FOR_RETRY:
        task_logger.info("%s will be retried at %s", node.task_id, next_at.isoformat() if next_at else "?")
        _run_callbacks(executable.on_retry_callback, context, "retry")
    else:
        _run_callbacks(executable.on_failure_callback, context, "failure")
    return TryOutcome(state, started, clock.now(), error=message, traceback=tb, next_try_at=next_at, rendered=rendered)


def lost_try_alerts(
    executable: Any,
    run: RunInfo,
    task_id: str,
    try_number: int,
    state: TaskState,
    error: str,
    services: TaskServices,
) -> int:
    """The failure (``state`` failed) or retry callbacks and e-mail of a try that could not run
    them itself: it timed out or its worker died (Airflow calls them for such a task too, so a
    hang or an OOM kill is not the one failure nobody hears of). Returns how many were called."""
    limit = default_max_tries(executable.to_node()) if hasattr(executable, "to_node") else try_number
    ti = TaskInstance(run, task_id, try_number, limit, MemoryResults())
    context = build_context(run, ti, executable, log=task_logger, extra=services.context_values())
    adapt = getattr(executable, "adapt_context", None)
    if adapt is not None:
        context = adapt(context)
    context = context.with_values(exception=TaskExecutionError(error), reason=error)
    if state == TaskState.UP_FOR_RETRY:
        callbacks = list(getattr(executable, "on_retry_callback", ()) or ())
        _run_callbacks(callbacks, context, "retry")
        if bool(getattr(executable, "retry_email", None)):
            _failure_email(executable, context, services, retry=True)
    else:
        callbacks = list(getattr(executable, "on_failure_callback", ()) or ())
        _run_callbacks(callbacks, context, "failure")
        _failure_email(executable, context, services)
    lost = getattr(executable, "on_lost", None)
    if lost is not None:  # a class task: its event handlers (Luigi's FAILURE, TIMEOUT...)
        return len(callbacks) + lost(error, timed_out=error.startswith("timed out"))
    return len(callbacks)


def _failure_email(
    executable: Executable, context: TaskContext, services: TaskServices, *, retry: bool = False
) -> None:
    """E-mail a task's definitive failure: to the task's ``failure_email`` addresses, else the
    flow's ``on_failure_email``; with ``retry``, a failed try that will be retried, to the task's
    ``retry_email`` (Airflow's ``email_on_failure``/``email_on_retry``)."""
    flow = getattr(executable, "flow", None)
    if retry:
        to = tuple(getattr(executable, "retry_email", ()) or ())
    else:
        to = tuple(getattr(executable, "failure_email", ()) or ()) or tuple(getattr(flow, "on_failure_email", ()) or ())
    if not to:
        return
    if services.failure_alert is None:
        task_logger.warning("no way to send the failure e-mail to %s: the runtime gave no alert sender", ", ".join(to))
        return
    try:
        services.failure_alert(context.with_values(retrying=retry) if retry else context, to)
        task_logger.info("failure e-mail sent to %s", ", ".join(to))
    except Exception:
        task_logger.exception("could not send the failure e-mail to %s", ", ".join(to))
