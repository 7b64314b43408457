"""The operators a compiled pipeline is made of.

Each one keeps the pipeline's ``PipelineInfo`` (the definition, the schedule type) and the id of
the object it stands for, and evaluates that object's fields at the start of every try, against
the run's scheduled times and parameters, exactly as AWS Data Pipeline evaluates them for an
instance. They are ordinary operators: the engine retries, times out, logs and records them like
any other task.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.declarative.datapipeline import storage
from ductwork.declarative.datapipeline.compiler import PipelineInfo
from ductwork.declarative.datapipeline.expressions import ExpressionError
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.runtime import ShellRun, try_scope
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import TaskExecutionError


class PipelineObjectOperator(BaseOperator):
    """Base of the operators that stand for one object of a pipeline definition."""

    ui_color: ClassVar[str] = "#eef3fb"

    def __init__(self, *, info: PipelineInfo, object_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = info
        self.object_id = object_id

    @property
    def obj(self) -> PipelineObject:
        return self.info.definition.objects[self.object_id]

    def scope(self, context: TaskContext) -> Scope:
        return try_scope(self.info, context)

    def field_text(self, scope: Scope, name: str, obj: PipelineObject | None = None) -> str | None:
        """A field evaluated for this try; an expression error fails the try naming the field."""
        target = obj or self.obj
        try:
            return scope.text(target, name)
        except ExpressionError as exc:
            raise TaskExecutionError(f"object {target.id!r}, field {name!r}, {exc}") from None

    def field_texts(self, scope: Scope, name: str, obj: PipelineObject | None = None) -> list[str]:
        target = obj or self.obj
        try:
            return scope.texts(target, name)
        except ExpressionError as exc:
            raise TaskExecutionError(f"object {target.id!r}, field {name!r}, {exc}") from None

    def referenced(self, name: str, obj: PipelineObject | None = None) -> list[PipelineObject]:
        """The objects a reference field names (inherited ones included)."""
        from ductwork.declarative.datapipeline.compiler import _refs

        target = obj or self.obj
        effective = self.info.definition.effective(target)
        return [
            self.info.definition.objects[r] for r in _refs(effective.get(name)) if r in self.info.definition.objects
        ]

    def extra_spec(self) -> dict[str, Any]:
        return {"object": self.object_id, "type": self.obj.type}


class ShellCommandActivityOperator(PipelineObjectOperator):
    """``ShellCommandActivity``: ``command`` (or the script at ``scriptUri``) run by bash with
    ``scriptArgument`` values as ``$1``, ``$2``...; ``stdout``/``stderr`` also written to the
    paths given; with ``stage``, S3 inputs are copied to ``${INPUT1_STAGING_DIR}``... before and
    ``${OUTPUT1_STAGING_DIR}``... copied to the outputs after."""

    ui_color: ClassVar[str] = "#f0ede4"

    def __init__(self, *, stage: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self._shell = ShellRun()

    def execute(self, context: TaskContext) -> Any:
        scope = self.scope(context)
        command = self.field_text(scope, "command")
        args = self.field_texts(scope, "scriptArgument")
        stdout = self.field_text(scope, "stdout")
        stderr = self.field_text(scope, "stderr")
        with tempfile.TemporaryDirectory(prefix="ductwork-shell-") as tmp:
            work = Path(tmp)
            if command is None:
                uri = self.field_text(scope, "scriptUri") or ""
                script = work / "script.sh"
                script.write_bytes(storage.read_bytes(uri))
                command = f'bash "{script}" "$@"'
            env: dict[str, str] = {}
            outputs: list[tuple[Path, str]] = []
            if self.stage:
                env, outputs = self._stage_in(scope, work)
            context["log"].info("running: %s", command)
            self._shell = ShellRun()
            code, lines = self._shell.run(command, args, env=env, cwd=str(work), stdout_path=stdout, stderr_path=stderr)
            if code != 0:
                raise TaskExecutionError(f"the command exited with code {code}")
            for folder, url in outputs:
                written = storage.upload(folder, url)
                context["log"].info("staged %d file(s) out to %s", len(written), url)
        return lines[-1] if lines else None

    def _stage_in(self, scope: Scope, work: Path) -> tuple[dict[str, str], list[tuple[Path, str]]]:
        env: dict[str, str] = {}
        outputs: list[tuple[Path, str]] = []
        for index, node in enumerate(self.referenced("input"), start=1):
            folder = work / f"input{index}"
            folder.mkdir()
            url = data_node_url(self, scope, node)
            if url is not None:
                storage.download(url, folder)
            env[f"INPUT{index}_STAGING_DIR"] = str(folder)
        for index, node in enumerate(self.referenced("output"), start=1):
            folder = work / f"output{index}"
            folder.mkdir()
            url = data_node_url(self, scope, node, directory=True)
            if url is not None:
                outputs.append((folder, url))
            env[f"OUTPUT{index}_STAGING_DIR"] = str(folder)
        return env, outputs

    def on_kill(self) -> None:
        self._shell.stop()


def data_node_url(
    op: PipelineObjectOperator, scope: Scope, node: PipelineObject, *, directory: bool = False
) -> str | None:
    """The S3 location of a data node: its ``directoryPath``, or its ``filePath`` (for a
    directory: the folder the file is in)."""
    if node.type != "S3DataNode":
        return None
    path = op.field_text(scope, "directoryPath", node)
    if path:
        return path
    file_path = op.field_text(scope, "filePath", node)
    if file_path and directory:
        return file_path.rpartition("/")[0]
    return file_path


class DataNodeOperator(PipelineObjectOperator):
    """A data node's instance: ready once its producers ended and its preconditions held (those
    are tasks of their own, upstream of this one)."""

    ui_color: ClassVar[str] = "#e8f4ea"

    def execute(self, context: TaskContext) -> Any:
        context["log"].info("%s %r is ready", self.obj.type, self.object_id)
        return None
