"""Actions: ``SnsAlarm`` and ``Terminate``, on ``onSuccess``, ``onFail`` and ``onLateAction``.

``onSuccess``/``onFail`` actions of an object are tasks after it (``<object>.onFail.<action>``):
an ``onFail`` action runs when the object failed, and when it did not run because something
upstream failed only if the object's ``failureAndRerunMode`` is ``cascade`` (AWS fires the
actions of cascade-failed objects; without cascade its consumers just wait). ``onLateAction``
actions are fired by a watcher task (``<object>.onLateAction``) that starts with the run and, if
the object has not finished ``lateAfterTimeout`` after the scheduled start, fires them: an
``SnsAlarm`` sends its message, a ``Terminate`` stops the object (it ends ``failed`` without
retry, as AWS cancels it).

An ``SnsAlarm``'s ``topicArn`` names a Ductwork connection: the topic's name (the last part of
the ARN) is the connection id. An ``smtp://`` (or ``smtps://``) connection sends an e-mail to its
``to`` extra; an ``http(s)://`` connection receives the JSON an SNS HTTP subscription would
(``Type``, ``TopicArn``, ``Subject``, ``Message``, ``Timestamp``).
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.sensors import RESCHEDULE, BaseSensorOperator, context_clock
from ductwork.core.signals import SkipTask
from ductwork.declarative.datapipeline.expressions import ExpressionError
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.plan import PipelineInfo
from ductwork.declarative.datapipeline.runtime import (
    TERMINATE_KEY,
    engine_state,
    recorded_status,
    try_scope,
)
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import DuctworkError, TaskExecutionError

_TERMINAL = {"success", "failed", "upstream_failed", "skipped"}
_ENGINE_STATUS = {
    "success": "FINISHED",
    "failed": "FAILED",
    "upstream_failed": "CASCADE_FAILED",
    "skipped": "SKIPPED",
    "running": "RUNNING",
    "queued": "RUNNING",
    "up_for_retry": "WAITING_FOR_RUNNER",
    "up_for_reschedule": "WAITING_ON_DEPENDENCIES",
}


def topic_connection_id(topic_arn: str) -> str:
    """``arn:aws:sns:us-east-1:123456789012:ops-alerts`` -> ``ops-alerts``."""
    return topic_arn.rsplit(":", 1)[-1].strip() or topic_arn


def node_runtime(context: TaskContext, task_id: str, *, finished: bool = False) -> dict[str, Any]:
    """The runtime fields of the object an action acts for (``#{node.@status}``...), from what
    its task recorded and, when the try has the store, the engine's state. ``finished``: the
    object's task has ended (an onSuccess/onFail action runs after it), so a try that recorded
    its start and nothing more was stopped from outside; the engine's state may still say
    running when the action starts, so it does not decide that."""
    recorded = recorded_status(context, task_id) or {}
    state = engine_state(context, task_id)
    status = recorded.get("status") or _ENGINE_STATUS.get(state or "", "CASCADE_FAILED")
    if status == "RUNNING" and finished:
        recorded = {**recorded, **_stopped(context, recorded)}
        status = _ENGINE_STATUS[state] if state in _TERMINAL else "FAILED"
    fields: dict[str, Any] = {"@status": status}
    for key in ("actualStartTime", "actualEndTime"):
        if recorded.get(key):
            fields[f"@{key}"] = dt.datetime.fromisoformat(recorded[key])
    error = recorded.get("errorMessage") or ("an object it depends on failed" if status == "CASCADE_FAILED" else "")
    fields["errorMessage"] = error
    fields["errorId"] = recorded.get("errorId") or ("" if not error else "Error")
    fields["errorStackTrace"] = recorded.get("errorStackTrace") or error
    fields["@failureReason"] = error
    if recorded.get("attempt"):
        fields["@attemptCount"] = recorded["attempt"]
    return fields


def _stopped(context: TaskContext, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """What an object's try that recorded its start and never its end says: it was stopped from
    outside, at its ``attemptTimeout`` or with its worker, so it is not RUNNING (an ``onFail``
    alarm of a timed-out object said ``#{node.@status}`` RUNNING and an empty errorMessage)."""
    timeout = float(recorded.get("attemptTimeout") or 0)
    started = recorded.get("actualStartTime")
    now = context_clock(context).now()
    message = "the attempt was stopped before it finished"
    # A second of slack: the executor's deadline counts from a little before the record.
    if timeout and started and now >= dt.datetime.fromisoformat(started) + dt.timedelta(seconds=timeout - 1):
        message = f"timed out after {timeout:g}s (attemptTimeout)"
    return {"errorMessage": recorded.get("errorMessage") or message, "actualEndTime": now.isoformat()}


def send_sns(context: TaskContext, scope: Scope, alarm: PipelineObject, node: PipelineObject) -> str:
    """Send an ``SnsAlarm`` about ``node`` through the connection its topic names."""
    from ductwork.integrations.email.operators import SmtpConfig, build_message, send_email

    def text(name: str) -> str:
        try:
            return scope.text(alarm, name, node=node) or ""
        except ExpressionError as exc:
            raise TaskExecutionError(f"object {alarm.id!r}, field {name!r}, {exc}") from None

    topic, subject, message = text("topicArn"), text("subject"), text("message")
    conn_id = topic_connection_id(topic)
    secrets = context.get("secrets")
    if secrets is None:
        raise TaskExecutionError(f"SnsAlarm {alarm.id!r}: this try was given no connections to find {conn_id!r}")
    try:
        conn = secrets.get_connection(conn_id)
    except DuctworkError as exc:
        raise TaskExecutionError(
            f"SnsAlarm {alarm.id!r}: topic {topic!r} is delivered through the connection {conn_id!r}: {exc}"
        ) from None
    if conn.conn_type in ("smtp", "smtps"):
        to = str(conn.extra.get("to") or "")
        if not to:
            raise TaskExecutionError(f"SnsAlarm {alarm.id!r}: connection {conn_id!r} has no 'to' extra (?to=a@b.c)")
        smtp = SmtpConfig.from_connection(conn)
        mail = build_message(
            sender=smtp.sender, to=to, subject=subject, html=f"<pre>{html.escape(message)}</pre>", text=message
        )
        sent = send_email(mail, smtp=smtp, what=f"SnsAlarm {alarm.id!r}")
        context["log"].info("SnsAlarm %s: e-mailed %s", alarm.id, ", ".join(sent))
        return "email"
    if conn.conn_type in ("http", "https"):
        from ductwork.integrations.http.operators import SUCCESS_CODES, send, status_error

        body = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Subject": subject,
            "Message": message,
            "Timestamp": context_clock(context).now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        what = f"SnsAlarm {alarm.id!r}"
        response = send(what=what, method="POST", url=conn.base_url(), headers={}, json=body, timeout=30.0)
        if response.status_code not in SUCCESS_CODES:
            raise status_error(what, response, SUCCESS_CODES)
        context["log"].info("SnsAlarm %s: posted to %s", alarm.id, conn.base_url())
        return "webhook"
    raise TaskExecutionError(
        f"SnsAlarm {alarm.id!r}: connection {conn_id!r} is of type {conn.conn_type!r}; use smtp://, smtps://, "
        "http:// or https://"
    )


class ActionOperator(BaseOperator):
    """One ``onSuccess`` or ``onFail`` action of one object."""

    ui_color: ClassVar[str] = "#fbeeee"

    def __init__(
        self,
        *,
        info: PipelineInfo,
        action_id: str,
        node_id: str,
        node_task_id: str,
        when: str,
        cascade: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # An action reports on its object; it does not stand in for it. Were it an ordinary leaf,
        # an onFail alarm that was sent would make the run of a failed object a success (the
        # object is no leaf). As a teardown that fails the run, both the object's outcome and the
        # action's own count; its trigger rule stays the one that fits its onSuccess/onFail.
        self.__dict__["is_teardown"] = True
        self.__dict__["on_failure_fail_dagrun"] = True
        self.info = info
        self.action_id = action_id
        self.node_id = node_id
        self.node_task_id = node_task_id
        self.when = when
        self.cascade = cascade

    def execute(self, context: TaskContext) -> Any:
        runtime = node_runtime(context, self.node_task_id, finished=True)
        if self.when == "onFail" and runtime["@status"] == "CASCADE_FAILED" and not self.cascade:
            raise SkipTask(
                f"{self.node_id} did not run because an object it depends on failed; its onFail actions fire on "
                "such a failure only with failureAndRerunMode cascade"
            )
        objects = self.info.definition.objects
        scope = try_scope(self.info, context, extra={self.node_id: runtime})
        return send_sns(context, scope, objects[self.action_id], objects[self.node_id])

    def extra_spec(self) -> dict[str, Any]:
        # "type" is what `pipelines describe` shows: the action's AWS type, not this class.
        action_type = self.info.definition.objects[self.action_id].type
        return {"action": self.action_id, "object": self.node_id, "on": self.when, "type": action_type}


class LateWatcher(BaseSensorOperator):
    """Fires an object's ``onLateAction`` actions if it has not finished ``late_after`` seconds
    after the run's scheduled start; skipped when the object finishes in time."""

    ui_color: ClassVar[str] = "#fff4e0"

    def __init__(
        self,
        *,
        info: PipelineInfo,
        node_id: str,
        node_task_id: str,
        late_after: float,
        actions: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", RESCHEDULE)
        kwargs.setdefault("poke_interval", 1.0)
        kwargs.setdefault("timeout", 365 * 86400.0)
        super().__init__(**kwargs)
        self.info = info
        self.node_id = node_id
        self.node_task_id = node_task_id
        self.late_after = late_after
        self.actions = actions

    def _finished(self, context: TaskContext) -> bool:
        state = engine_state(context, self.node_task_id)
        if state in _TERMINAL:
            return True
        recorded = recorded_status(context, self.node_task_id)
        return bool(recorded and recorded.get("status") in ("FINISHED", "FAILED", "CANCELED"))

    def deadline(self, context: TaskContext) -> dt.datetime:
        run = context["ti"].run
        start, _ = self.info.scheduled_times(run.data_interval_start, run.data_interval_end)
        return start + dt.timedelta(seconds=self.late_after)

    def poke(self, context: TaskContext) -> bool:
        if self._finished(context):
            raise SkipTask(f"{self.node_id} finished before its deadline")
        deadline = self.deadline(context)
        now = context_clock(context).now()
        if now < deadline:
            context["log"].info("%s has until %s to finish", self.node_id, deadline.isoformat())
            return False
        context["log"].warning("%s is late: not finished at %s", self.node_id, deadline.isoformat())
        self.fire(context)
        return True

    def next_interval(self, pokes: int) -> float:
        """A second, doubling up to half a minute: an object that ends quickly lets its run end
        soon after, and a long one costs a look every 30 s (so a deadline is seen within 30 s)."""
        return float(min(30.0, self.poke_interval * 2 ** min(pokes - 1, 5)))

    def fire(self, context: TaskContext) -> None:
        objects = self.info.definition.objects
        runtime = node_runtime(context, self.node_task_id)
        if runtime["@status"] == "CASCADE_FAILED":
            runtime["@status"] = "WAITING_ON_DEPENDENCIES"
            runtime["errorMessage"] = runtime["@failureReason"] = ""
        scope = try_scope(self.info, context, extra={self.node_id: runtime})
        failures: list[str] = []
        for action_id in self.actions:
            action = objects[action_id]
            try:
                if action.type == "Terminate":
                    ti = context["ti"]
                    ti.results.push(ti.run.key, self.node_task_id, TERMINATE_KEY, {"by": action_id, "late": True})
                    context["log"].warning("Terminate %s: asked %s to stop", action_id, self.node_id)
                else:
                    send_sns(context, scope, action, objects[self.node_id])
            except DuctworkError as exc:
                failures.append(str(exc))
        if failures:
            raise TaskExecutionError("; ".join(failures))

    def extra_spec(self) -> dict[str, Any]:
        objects = self.info.definition.objects
        return {
            **super().extra_spec(),
            "object": self.node_id,
            "late_after": self.late_after,
            "actions": list(self.actions),
            # What `pipelines describe` shows: the AWS types of the actions it fires.
            "type": ", ".join(dict.fromkeys(str(objects[a].type) for a in self.actions if a in objects)),
        }


def action_targets(definition_objects: Mapping[str, PipelineObject], ids: list[str]) -> list[PipelineObject]:
    return [definition_objects[i] for i in ids if i in definition_objects]
