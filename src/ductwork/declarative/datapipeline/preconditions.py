"""Preconditions as sensors: ``ShellCommandPrecondition``, ``S3KeyExists``, ``S3PrefixNotEmpty``
and ``Exists``.

A precondition of an object is a task of its own, ``<object>.<precondition>``, upstream of the
object. It checks every ``retryDelay`` (in reschedule mode: the worker slot is free between
checks) and gives up, failing without retry, after ``preconditionTimeout`` or after
``maximumRetries`` further checks, whichever comes first; the object then does not run
(``upstream_failed``, AWS's cascade). Fields are evaluated with ``node`` being the object, so
``#{node.@scheduledStartTime}`` works as in AWS.
"""

from __future__ import annotations

import tempfile
from typing import Any, ClassVar

from ductwork.core.context import TaskContext
from ductwork.core.sensors import RESCHEDULE, BaseSensorOperator, SensorTimeout
from ductwork.declarative.datapipeline import storage
from ductwork.declarative.datapipeline.expressions import ExpressionError
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.plan import PipelineInfo, refs
from ductwork.declarative.datapipeline.runtime import ShellRun, record_status, try_scope
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import TaskExecutionError


class PreconditionSensor(BaseSensorOperator):
    """Waits until one precondition object holds for one pipeline object."""

    ui_color: ClassVar[str] = "#f3efe2"

    def __init__(
        self,
        *,
        info: PipelineInfo,
        object_id: str,
        node_id: str,
        max_checks: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", RESCHEDULE)
        super().__init__(**kwargs)
        self.info = info
        self.object_id = object_id
        self.node_id = node_id
        self.max_checks = max_checks
        self._shell = ShellRun()

    @property
    def obj(self) -> PipelineObject:
        return self.info.definition.objects[self.object_id]

    @property
    def node(self) -> PipelineObject:
        return self.info.definition.objects[self.node_id]

    def text(self, scope: Scope, name: str, obj: PipelineObject | None = None) -> str | None:
        target = obj or self.obj
        try:
            return scope.text(target, name, node=self.node if target is self.obj else None)
        except ExpressionError as exc:
            raise TaskExecutionError(f"object {target.id!r}, field {name!r}, {exc}") from None

    def execute(self, context: TaskContext) -> Any:
        try:
            value = super().execute(context)
        except SensorTimeout as exc:
            record_status(context, "FAILED", errorMessage=str(exc))
            raise
        record_status(context, "FINISHED")
        return value

    def next_interval(self, pokes: int) -> float:
        if self.max_checks is not None and pokes >= self.max_checks:
            raise SensorTimeout(
                f"precondition {self.object_id!r} of {self.node_id!r} was not met after {pokes} check(s) "
                f"(maximumRetries {self.max_checks - 1})"
            )
        return super().next_interval(pokes)

    def poke(self, context: TaskContext) -> bool:
        scope = try_scope(self.info, context)
        kind = self.obj.type
        if kind == "ShellCommandPrecondition":
            return self._shell_check(context, scope)
        if kind == "S3KeyExists":
            key = self.text(scope, "s3Key") or ""
            found = storage.exists(key) and storage.is_file(key)
            context["log"].info("S3KeyExists %s: %s", key, "found" if found else "not there yet")
            return found
        if kind == "S3PrefixNotEmpty":
            prefix = self.text(scope, "s3Prefix") or ""
            found = storage.prefix_not_empty(prefix)
            context["log"].info("S3PrefixNotEmpty %s: %s", prefix, "not empty" if found else "empty")
            return found
        return self._exists(context, scope)

    def _shell_check(self, context: TaskContext, scope: Scope) -> bool:
        command = self.text(scope, "command")
        args = [a for a in scope.texts(self.obj, "scriptArgument", node=self.node)]
        with tempfile.TemporaryDirectory(prefix="ductwork-precondition-") as tmp:
            if command is None:
                script = f"{tmp}/script.sh"
                with open(script, "wb") as fh:
                    fh.write(storage.read_bytes(self.text(scope, "scriptUri") or ""))
                command = f'bash "{script}" "$@"'
            self._shell = ShellRun()
            code, _ = self._shell.run(
                command,
                args,
                cwd=tmp,
                stdout_path=self.text(scope, "stdout"),
                stderr_path=self.text(scope, "stderr"),
            )
        context["log"].info("precondition command exited with %d (%s)", code, "met" if code == 0 else "not met")
        return code == 0

    def _exists(self, context: TaskContext, scope: Scope) -> bool:
        """``Exists``: the data node's data is there (S3 path, or SQL table)."""
        from ductwork.declarative.datapipeline.sql import table_exists

        node = self.node
        if node.type == "S3DataNode":
            path = self.text(scope, "directoryPath", node) or self.text(scope, "filePath", node) or ""
            found = storage.prefix_not_empty(path) if self.text(scope, "directoryPath", node) else storage.exists(path)
            context["log"].info("Exists %s: %s", path, "yes" if found else "not yet")
            return found
        return table_exists(_Lookup(self.info, node.id, self.task_id), context, scope, node)

    def on_kill(self) -> None:
        super().on_kill()
        self._shell.stop()

    def extra_spec(self) -> dict[str, Any]:
        return {**super().extra_spec(), "object": self.object_id, "type": self.obj.type, "node": self.node_id}


class _Lookup:
    """The little an SQL helper needs of an operator: its task id and reference lookups."""

    def __init__(self, info: PipelineInfo, object_id: str, task_id: str) -> None:
        self.info = info
        self.object_id = object_id
        self.task_id = task_id

    def referenced(self, name: str, obj: PipelineObject | None = None) -> list[PipelineObject]:
        target = obj or self.info.definition.objects[self.object_id]
        objects = self.info.definition.objects
        return [objects[r] for r in refs(self.info.definition.effective(target).get(name)) if r in objects]
