"""The operators a compiled pipeline is made of.

Each one keeps the pipeline's ``PipelineInfo`` (the definition, the schedule type) and the id of
the object it stands for, and evaluates that object's fields at the start of every try, against
the run's scheduled times and parameters, exactly as AWS Data Pipeline evaluates them for an
instance. They are ordinary operators: the engine retries, times out, logs and records them like
any other task. Each records its status (``RUNNING``, ``FINISHED``, ``FAILED``) with its times
and error as a result of the task, which is what actions read as ``#{node.@status}``.
"""

from __future__ import annotations

import gzip
import tempfile
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from ductwork.core.context import TaskContext
from ductwork.core.graph import NodeSpec
from ductwork.core.masking import MASKER
from ductwork.core.operators.base import BaseOperator
from ductwork.core.sensors import context_clock
from ductwork.core.signals import FailNow, TaskSignal
from ductwork.declarative.datapipeline import storage
from ductwork.declarative.datapipeline.copyoptions import CopyOptions
from ductwork.declarative.datapipeline.expressions import ExpressionError, to_text
from ductwork.declarative.datapipeline.formats import DataFormat, data_format
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.plan import PipelineInfo, refs
from ductwork.declarative.datapipeline.runtime import (
    ShellRun,
    record_status,
    terminate_requested,
    try_scope,
)
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import DuctworkError, TaskExecutionError, TryInterrupted

_TERMINATE_POLL = 1.0


class TerminatedError(FailNow, DuctworkError):
    """A ``Terminate`` action stopped a late object (no retry, as AWS cancels it)."""


class PipelineObjectOperator(BaseOperator):
    """Base of the operators that stand for one object of a pipeline definition."""

    ui_color: ClassVar[str] = "#eef3fb"

    def __init__(self, *, info: PipelineInfo, object_id: str, cascade: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = info
        self.object_id = object_id
        self.cascade = cascade

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

    def rendered_fields(self, context: TaskContext) -> dict[str, Any]:
        """The object's text fields (its own and inherited) with their ``#{...}`` expressions
        evaluated as this try would (``ductwork tasks render``); ``*`` fields are masked."""
        from ductwork.declarative.datapipeline.catalog import NOT_INHERITED
        from ductwork.declarative.datapipeline.model import Ref

        scope = self.scope(context)
        shared = (scope.runtime or {}).get("", {})
        out: dict[str, Any] = {
            name: to_text(shared[name]) for name in ("@scheduledStartTime", "@scheduledEndTime") if name in shared
        }
        for name, raw in self.info.definition.effective(self.obj).items():
            items = raw if isinstance(raw, list) else [raw]
            if name in NOT_INHERITED or not items or any(isinstance(item, Ref) for item in items):
                continue
            if name.startswith("*"):
                out[name] = "***"
                continue
            try:
                value = scope.value(self.obj, name)
            except ExpressionError as exc:
                value = f"(error: {exc})"
            out[name] = value if isinstance(raw, list) or isinstance(value, list) else scope.text(self.obj, name)
        return out

    def referenced(self, name: str, obj: PipelineObject | None = None) -> list[PipelineObject]:
        """The objects a reference field names (inherited ones included)."""
        target = obj or self.obj
        effective = self.info.definition.effective(target)
        objects = self.info.definition.objects
        return [objects[r] for r in refs(effective.get(name)) if r in objects]

    # --- the try ---------------------------------------------------------------------------
    def execute(self, context: TaskContext) -> Any:
        started = context_clock(context).now().isoformat()
        if terminate_requested(context, self.task_id):
            record_status(context, "CANCELED", actualStartTime=started, errorMessage="terminated: late")
            raise TerminatedError(f"{self.object_id} was terminated by its onLateAction before it started")
        # The timeout goes with the start: a try stopped at it records nothing more, and its
        # actions say why from this (actions.node_runtime).
        record_status(context, "RUNNING", actualStartTime=started, attemptTimeout=self.execution_timeout)
        stop = threading.Event()
        terminated = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(context, stop, terminated), daemon=True)
        watcher.start()
        try:
            value = self.run_object(context)
        except TaskSignal:
            raise
        except BaseException as exc:
            if isinstance(exc, TryInterrupted) and not terminated.is_set():
                # Stopped by the executor (attemptTimeout, a cancel), perhaps after the object's
                # actions ran: the RUNNING record stays, and they read it as stopped (node_runtime).
                raise
            if terminated.is_set():
                record_status(context, "CANCELED", actualStartTime=started, errorMessage="terminated: late")
                raise TerminatedError(f"{self.object_id} was terminated by its onLateAction while running") from exc
            message = str(exc) if isinstance(exc, DuctworkError) else f"{type(exc).__name__}: {exc}"
            # errorId and errorStackTrace are AWS's runtime fields beside errorMessage
            # (#{node.errorId} in an onFail alarm): the error's class and its traceback.
            trace = MASKER.mask("".join(traceback.format_exception(exc)))
            record_status(
                context,
                "FAILED",
                actualStartTime=started,
                errorMessage=message,
                errorId=type(exc).__name__,
                errorStackTrace=trace,
            )
            raise
        finally:
            stop.set()
        if terminated.is_set():
            record_status(context, "CANCELED", actualStartTime=started, errorMessage="terminated: late")
            raise TerminatedError(f"{self.object_id} was terminated by its onLateAction")
        record_status(context, "FINISHED", actualStartTime=started)
        return value

    def _watch(self, context: TaskContext, stop: threading.Event, terminated: threading.Event) -> None:
        """Stop this try when a Terminate action asks for it (a late object)."""
        while not stop.wait(_TERMINATE_POLL):
            try:
                asked = terminate_requested(context, self.task_id)
            except Exception:
                continue
            if asked:
                terminated.set()
                self.on_kill()
                return

    def run_object(self, context: TaskContext) -> Any:
        raise NotImplementedError

    def to_node(self) -> NodeSpec:
        node = super().to_node()
        return replace(node, cascade_rerun=True)

    def extra_spec(self) -> dict[str, Any]:
        return {
            "object": self.object_id,
            "type": self.obj.type,
            "failureAndRerunMode": "cascade" if self.cascade else "none",
            # A cron-style instance starts when its run's interval ends (PipelineInfo.scheduled_times):
            # what `pipelines describe` needs to show the times the object saw.
            **({"cronPeriod": str(self.info.period)} if self.info.schedule_type == "cron" and self.info.period else {}),
        }


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

    def run_object(self, context: TaskContext) -> Any:
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


class SqlActivityOperator(PipelineObjectOperator):
    """``SqlActivity``: the ``script`` (or the file at ``scriptUri``) run on the ``database``,
    statement by statement in one transaction; ``scriptArgument`` values fill the ``?``
    placeholders, in order."""

    ui_color: ClassVar[str] = "#e6eef7"

    def run_object(self, context: TaskContext) -> Any:
        from ductwork.declarative.datapipeline import sql

        scope = self.scope(context)
        script = self.field_text(scope, "script")
        if script is None:
            script = storage.read_text(self.field_text(scope, "scriptUri") or "")
        args = self.field_texts(scope, "scriptArgument")
        database = self.referenced("database")[0]
        counts = sql.run_script(self, context, scope, database, script, args)
        context["log"].info("ran %d statement(s): %s rows affected", len(counts), counts)
        return counts


class CopyActivityOperator(PipelineObjectOperator):
    """``CopyActivity``: rows from the input data node to the output one (S3 to S3, S3 to a SQL
    table, a SQL table or query to S3, SQL to SQL), with the data formats of the S3 nodes."""

    ui_color: ClassVar[str] = "#e6f2ee"

    def __init__(self, *, insert_mode: str = "APPEND", copy_options: CopyOptions | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.insert_mode = insert_mode
        self.copy_options = copy_options

    def run_object(self, context: TaskContext) -> Any:
        from ductwork.declarative.datapipeline import sql

        scope = self.scope(context)
        source = self.referenced("input")[0]
        target = self.referenced("output")[0]
        if source.type == "S3DataNode" and target.type == "S3DataNode":
            return self._s3_to_s3(context, scope, source, target)
        rows, columns = self._read(context, scope, source)
        if target.type == "S3DataNode":
            fmt = data_format(_first(self.referenced("dataFormat", target)), scope)
            url = data_node_url(self, scope, target)
            assert url is not None
            zipped = self._gzip(scope, target)
            if self.field_text(scope, "directoryPath", target):
                url = url.rstrip("/") + ("/output.csv.gz" if zipped else "/output.csv")
            data = fmt.write(rows).encode("utf-8")
            storage.write_bytes(url, gzip.compress(data) if zipped else data)
            context["log"].info("wrote %d row(s) to %s", len(rows), url)
        else:
            sql.write_rows(self, context, scope, target, rows, columns, insert_mode=self.insert_mode)
        return {"rows": len(rows)}

    def _read(self, context: TaskContext, scope: Scope, source: PipelineObject) -> tuple[list[list[Any]], list[str]]:
        from ductwork.declarative.datapipeline import sql

        if source.type == "S3DataNode":
            fmt = data_format(_first(self.referenced("dataFormat", source)), scope)
            url = data_node_url(self, scope, source)
            assert url is not None
            _require_input(source, url)
            zipped = self._gzip(scope, source)
            names = [url] if storage.is_file(url) else [f"{url.rstrip('/')}/{n}" for n in storage.list_files(url)]
            options = self._command_options(context, source)
            rows: list[list[Any]] = []
            for name in names:
                data = storage.read_bytes(name)
                if options is not None:
                    if zipped and options.compression is None:
                        data = gzip.decompress(data)
                    try:
                        rows.extend(options.read(data))
                    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
                        raise TaskExecutionError(
                            f"reading {name} as commandOptions say ({type(exc).__name__}: {exc})"
                        ) from None
                    continue
                rows.extend(fmt.read((gzip.decompress(data) if zipped else data).decode("utf-8")))
            return rows, fmt.column_names
        return sql.read_rows(self, context, scope, source)

    def _command_options(self, context: TaskContext, source: PipelineObject) -> CopyOptions | None:
        """The ``commandOptions`` that read the input (a RedshiftCopyActivity's); as AWS
        documents, none when the input or output data node has a ``dataFormat``."""
        if self.copy_options is None:
            return None
        nodes = [source, *self.referenced("output")]
        if any(self.referenced("dataFormat", node) for node in nodes):
            context["log"].info("commandOptions ignored: a data node of the copy has a dataFormat (as in AWS)")
            return None
        if self.copy_options.no_effect:
            context["log"].info("commandOptions with no effect here: %s", ", ".join(self.copy_options.no_effect))
        return self.copy_options

    def _s3_to_s3(self, context: TaskContext, scope: Scope, source: PipelineObject, target: PipelineObject) -> Any:
        src = data_node_url(self, scope, source)
        dst_dir = self.field_text(scope, "directoryPath", target)
        dst_file = self.field_text(scope, "filePath", target)
        assert src is not None
        _require_input(source, src)
        unzip, zip_ = self._gzip(scope, source), self._gzip(scope, target)
        src_fmt = data_format(_first(self.referenced("dataFormat", source)), scope)
        dst_fmt = data_format(_first(self.referenced("dataFormat", target)), scope)
        with tempfile.TemporaryDirectory(prefix="ductwork-copy-") as tmp:
            files = storage.download(src, Path(tmp))
            if replace(src_fmt, columns=()) != replace(dst_fmt, columns=()) or (dst_file and len(files) > 1):
                # AWS copies the files as they are only when both nodes have the same data
                # format; otherwise record by record, as it does from a directory to one file.
                # The files were copied unchanged: a TSV node held the CSV text.
                merged = Path(tmp) / "ductwork-records" if dst_file and len(files) > 1 else None
                files = _convert(files, src_fmt, dst_fmt, unzip=unzip, zip_=zip_, into=merged)
            elif unzip != zip_:  # the nodes' compression differs: the data changes form on the way
                files = [_recompress(f, unzip=unzip) for f in files]
            if dst_file and len(files) == 1:
                storage.write_bytes(dst_file, files[0].read_bytes())
                written = [dst_file]
            else:
                written = storage.upload(Path(tmp), dst_dir or (dst_file or "").rpartition("/")[0])
        context["log"].info("copied %d file(s) from %s", len(written), src)
        return {"files": len(written)}

    def _gzip(self, scope: Scope, node: PipelineObject) -> bool:
        """Whether an S3 data node's ``compression`` is gzip (AWS's field for copies)."""
        return (self.field_text(scope, "compression", node) or "none").strip().lower() == "gzip"


def _require_input(node: PipelineObject, url: str) -> None:
    """A copy's S3 input must be there: read as empty, a mistyped path or a file not yet written
    made a green run that copied nothing (AWS's copy fails: 'Input path does not exist')."""
    if not storage.exists(url):
        raise TaskExecutionError(f"input {node.id!r} ({node.type}): {url} does not exist")


def _convert(
    files: list[Path], src: DataFormat, dst: DataFormat, *, unzip: bool, zip_: bool, into: Path | None
) -> list[Path]:
    """The records of ``files`` read in the ``src`` format and written in ``dst``'s: each file in
    place (a directory copied to a directory keeps its file names), or all of them into the one
    file ``into`` when it is given (a directory copied to a file)."""

    def rows_of(path: Path) -> list[list[Any]]:
        data = path.read_bytes()
        return src.read((gzip.decompress(data) if unzip else data).decode("utf-8"))

    def encoded(rows: list[list[Any]]) -> bytes:
        data = dst.write(rows).encode("utf-8")
        return gzip.compress(data) if zip_ else data

    if into is not None:
        rows = [row for path in files for row in rows_of(path)]
        for path in files:
            path.unlink()
        into.write_bytes(encoded(rows))
        return [into]
    converted: list[Path] = []
    for path in files:
        data = encoded(rows_of(path))
        path.unlink()
        if unzip and not zip_ and path.suffix == ".gz":
            path = path.with_suffix("")
        elif zip_ and not unzip:
            path = path.with_name(path.name + ".gz")
        path.write_bytes(data)
        converted.append(path)
    return converted


def _recompress(path: Path, *, unzip: bool) -> Path:
    """``path`` decompressed (its ``.gz`` suffix dropped) or gzip-compressed (``.gz`` added),
    in place of the original."""
    if unzip:
        target = path.with_suffix("") if path.suffix == ".gz" else path
        data = gzip.decompress(path.read_bytes())
    else:
        target = path.with_name(path.name + ".gz")
        data = gzip.compress(path.read_bytes())
    path.unlink()
    target.write_bytes(data)
    return target


def _first(items: list[PipelineObject]) -> PipelineObject | None:
    return items[0] if items else None


class DataNodeOperator(PipelineObjectOperator):
    """A data node's instance: ready once its producers ended and its preconditions held (those
    are tasks of their own, upstream of this one)."""

    ui_color: ClassVar[str] = "#e8f4ea"

    def run_object(self, context: TaskContext) -> Any:
        context["log"].info("%s %r is ready", self.obj.type, self.object_id)
        return None
