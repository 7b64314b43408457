"""Declarative pipelines as ``aws datapipeline`` manages them: put a version, activate it,
deactivate it, list them with their schedule state and health, describe one object by object.

A definition is validated in a child process (the same sandbox the scheduler parses flow files
in: a Ductwork YAML file may import operator classes and callables) before anything is stored,
and again, with its activation time, before it is activated; an invalid one is refused whole.
The active version of each stored pipeline is written to ``$DUCTWORK_HOME/pipelines/`` by the
scheduler (``sync_stored``), which parses that folder like the flows folder; pipeline files in
the flows folder are listed too, managed by pausing and unpausing.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ductwork.core.states import RunState
from ductwork.errors import (
    BackfillRefusedError,
    DefinitionError,
    DuctworkError,
    FlowImportError,
    NotFoundError,
    did_you_mean,
)
from ductwork.services.next_run import next_run_after
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import pipelines as repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo

AWS = "aws-datapipeline"
YAML = "yaml"
STYLES = (AWS, YAML)
SUFFIX = {AWS: ".json", YAML: ".yaml"}


class InvalidPipelineError(DefinitionError):
    """A definition that did not validate; ``errors`` are the parser's, each naming object and field."""

    def __init__(self, source: str, errors: list[FlowImportError]) -> None:
        self.errors = errors
        lines = "".join(f"\n  - {f'line {e.line}: ' if e.line else ''}{e.error}" for e in errors)
        super().__init__(f"{source}: {len(errors)} problem(s); nothing was stored or activated{lines}")


def stored_folder(home: Path) -> Path:
    """Where the scheduler keeps the active versions of stored pipelines, as files it parses."""
    return home / "pipelines"


def detect_format(text: str, filename: str) -> str:
    """``aws-datapipeline`` for a definition with ``objects``, ``yaml`` for one with ``tasks``."""
    from ductwork.declarative.files import read_data

    data = read_data(text, filename)
    if isinstance(data, dict) and "objects" in data:
        return AWS
    if isinstance(data, dict) and "tasks" in data:
        return YAML
    raise DuctworkError(
        f"{filename}: not a pipeline (an AWS Data Pipeline definition has 'objects', a Ductwork pipeline 'tasks')"
    )


def with_parameters(
    text: str,
    filename: str,
    *,
    parameter_objects: list[Any] | None = None,
    values: Mapping[str, Any] | None = None,
) -> str:
    """An AWS definition with parameter objects and values merged in, as ``aws datapipeline
    put-pipeline-definition --parameter-objects ... --parameter-values ...`` gives them with the
    definition: a parameter object replaces the definition's of the same id (``*`` aside), a value
    replaces the one the definition has. What ``put`` stores is then one self-contained text."""
    if not parameter_objects and not values:
        return text
    if detect_format(text, filename) != AWS:
        raise DuctworkError(
            f"{filename}: parameter objects and values are for AWS Data Pipeline definitions; "
            "a Ductwork pipeline gives its params defaults"
        )
    data = json.loads(text)
    original = {k: data[k] for k in ("parameters", "values") if k in data}
    if parameter_objects:
        declared = data.get("parameters")
        merged: list[Any] = list(declared) if isinstance(declared, list) else []
        for obj in parameter_objects:
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise DuctworkError(f"a parameter object needs an 'id': {obj!r}")
            key = obj["id"].lstrip("*")
            merged = [p for p in merged if not (isinstance(p, dict) and str(p.get("id", "")).lstrip("*") == key)]
            merged.append(obj)
        data["parameters"] = merged
    if values:
        given = data.get("values")
        data["values"] = {**(given if isinstance(given, dict) else {}), **{k.lstrip("*"): v for k, v in values.items()}}
    if all(data[k] == v for k, v in original.items()):
        # Only keys the file lacks: added after its own text, so that its objects keep their
        # lines (problems name the file's lines).
        return _append_keys(text, {k: data[k] for k in ("parameters", "values") if k in data and k not in original})
    return json.dumps(data, indent=2) + "\n"


def _append_keys(text: str, keys: Mapping[str, Any]) -> str:
    """A JSON object's text with top-level keys it lacks added at its end, the rest of the text
    as it is: the objects keep the lines the user's file gave them, which problems name."""
    if not keys:
        return text
    body = text.rstrip()
    extra = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items())
    return f"{body[: body.rfind('}')].rstrip()},\n{extra}\n}}\n"


def default_name(text: str, filename: str, fmt: str) -> str:
    from ductwork.declarative.datapipeline import flow_id_for
    from ductwork.declarative.files import read_data

    if fmt == YAML:
        data = read_data(text, filename)
        if isinstance(data, dict) and data.get("flow"):
            return str(data["flow"])
    return flow_id_for(filename)


def materialized(version: repo.PipelineVersion) -> str:
    """The text the scheduler parses for a stored version: the definition with the pipeline's
    name, version, first activation time and paused state added (AWS definitions keep them in a
    top-level ``ductwork`` key; Ductwork files in their own keys)."""
    meta = {
        "name": version.name,
        "version": version.version,
        "paused": version.deactivated_at is not None,
    }
    if version.activated_at is not None:
        meta["firstActivationTime"] = version.activated_at.isoformat()
    if version.format == AWS:
        data = json.loads(version.definition)
        if "ductwork" not in data and isinstance(data, dict):
            return _append_keys(version.definition, {"ductwork": meta})
        data["ductwork"] = meta
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    import yaml

    data = yaml.safe_load(version.definition)
    data["flow"] = version.name
    data["tags"] = [
        *[t for t in data.get("tags", []) if not str(t).startswith("version:")],
        f"version:{version.version}",
    ]
    data["paused_on_creation"] = meta["paused"]
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def check(text: str, fmt: str, *, source: str, environ: Mapping[str, str] | None = None, timeout: float = 60.0) -> Any:
    """Parse a definition in a child process; its graph, or ``InvalidPipelineError``."""
    from ductwork.engine.parsing import parse_file

    with tempfile.TemporaryDirectory(prefix="ductwork-pipeline-") as tmp:
        path = Path(tmp) / f"{Path(source).stem or 'pipeline'}{SUFFIX[fmt]}"
        path.write_text(text)
        parsed = parse_file(path, timeout=timeout, environ=environ)
    errors = [FlowImportError(source, e.line, e.error, e.traceback) for e in parsed.errors]
    if errors or not parsed.graphs:
        raise InvalidPipelineError(source, errors or [FlowImportError(source, None, "it defines no flow")])
    return parsed.graphs[0]


@dataclass
class PutResult:
    version: repo.PipelineVersion
    created: bool
    tasks: list[str]
    active: int | None = None
    """The version that runs (None: none is active). AWS's put changes what an active pipeline
    runs; here the stored version waits for ``activate``, which callers say when they differ."""


def put(
    engine: Engine,
    text: str,
    *,
    filename: str,
    name: str | None = None,
    created_by: str = "",
    environ: Mapping[str, str] | None = None,
) -> PutResult:
    """Validate and store a definition as the next version of its pipeline."""
    fmt = detect_format(text, filename)
    name = name or default_name(text, filename, fmt)
    from ductwork.core.flow import _FLOW_ID

    if not _FLOW_ID.match(name):
        raise DuctworkError(f"pipeline name {name!r}: use letters, digits, '_', '.' and '-'")
    now = dt.datetime.now(dt.UTC)  # as if activated now: FIRST_ACTIVATION_DATE_TIME resolves
    probe = repo.PipelineVersion(name, 0, fmt, text, "", now, "", False, now, None, None)
    graph = check(materialized(probe), fmt, source=filename, environ=environ)
    with transaction(engine) as conn:
        version, created = repo.put_version(conn, name, fmt, text, created_by=created_by)
        active = repo.active_version(conn, name)
    return PutResult(version, created, list(graph.nodes), active.version if active else None)


BACKFILL_GUARD = dt.timedelta(days=1)


def activate(
    engine: Engine,
    name: str,
    *,
    version: int | None = None,
    allow_backfill: bool = False,
    environ: Mapping[str, str] | None = None,
) -> repo.PipelineVersion | None:
    """Make a version (the latest by default) the one the scheduler runs; an on-demand pipeline
    also gets a run. A pipeline of the flows folder (no versions: None) resumes, as
    ``deactivate`` paused it. Validated again with its activation time first. As AWS Data Pipeline does,
    a schedule that starts more than a day ago is refused unless ``allow_backfill`` (it would
    create a run for every period since)."""
    with read_transaction(engine) as conn:
        in_folder = name not in repo.names(conn) and _folder_pipeline(conn, name)
    if in_folder:
        _activate_file(engine, name, version)
        return None
    with read_transaction(engine) as conn:
        chosen = repo.require_version(conn, name, version)
        current = repo.active_version(conn, name)
    first = current.activated_at if current is not None and current.activated_at else dt.datetime.now(dt.UTC)
    probe = repo.PipelineVersion(
        chosen.name,
        chosen.version,
        chosen.format,
        chosen.definition,
        chosen.digest,
        chosen.created_at,
        chosen.created_by,
        True,
        first,
        None,
        None,
    )
    graph = check(materialized(probe), chosen.format, source=f"{name} version {chosen.version}", environ=environ)
    on_demand = graph.meta.schedule in ("None", "")
    start = _first_scheduled_start(graph)
    if start is not None and start < dt.datetime.now(dt.UTC) - BACKFILL_GUARD and graph.meta.catchup:
        _refuse_backfill(name, start, allowed=allow_backfill)
    with transaction(engine) as conn:
        activated = repo.activate(conn, name, chosen.version, request_run=on_demand)
        if flow_repo.get_flow(conn, name) is not None:
            flow_repo.set_paused(conn, name, False)
    return activated


def _folder_pipeline(conn: Any, name: str) -> bool:
    """Whether ``name`` is a declarative pipeline of the flows folder (not stored)."""
    flow = flow_repo.get_flow(conn, name)
    return flow is not None and flow.style in STYLES


def _activate_file(engine: Engine, name: str, version: int | None) -> None:
    """Resume a pipeline of the flows folder that ``deactivate`` paused: its file is its only
    version, and ``activate`` said "no stored pipeline", so the pipeline page's Activate button
    it then showed failed too. As for a stored one, an on-demand pipeline gets a run."""
    if version is not None:
        raise DuctworkError(
            f"pipeline {name!r} is a file of the flows folder, which has no stored versions: activate it without "
            "a version (or store it with `ductwork pipelines put FILE`)"
        )
    with transaction(engine) as conn:
        flow = flow_repo.get_flow(conn, name)
        assert flow is not None
        flow_repo.set_paused(conn, name, False)
        if flow.schedule in ("", "None"):
            from ductwork.services import runs as run_service

            run_service.trigger(engine, name, note="activation", conn=conn)


def _first_scheduled_start(graph: Any) -> dt.datetime | None:
    """The ``@scheduledStartTime`` of the schedule's first instance, which AWS's guard looks at.
    A cron-style instance starts when its run's interval ends, so a daily cron pipeline started
    at activation has its first run's logical date a day before: not a backfill."""
    if not graph.meta.start_date:
        return None
    start = dt.datetime.fromisoformat(graph.meta.start_date)
    periods = [n.extra.get("cronPeriod") for n in graph.nodes.values()]
    period = next((p for p in periods if p), None)
    if period is None:
        return start
    from ductwork.declarative.datapipeline.periods import parse_period

    return parse_period(str(period)).add(start)


def _refuse_backfill(name: str, start: dt.datetime, *, allowed: bool) -> None:
    if not allowed:
        raise BackfillRefusedError(
            f"pipeline {name!r}: its schedule starts at {start.isoformat()}, more than a day ago, so activating it "
            "would create a run for every period since; activate with --allow-backfill (allow_backfill in the API) "
            "if that is what you want, or move startDateTime (or use startAt FIRST_ACTIVATION_DATE_TIME)",
            start.isoformat(),
        )


def deactivate(engine: Engine, name: str) -> repo.PipelineVersion | None:
    """Pause a pipeline: a stored one (its active version) or one from the flows folder."""
    with transaction(engine) as conn:
        stored = repo.names(conn)
        flow = flow_repo.get_flow(conn, name)
        if name not in stored and (flow is None or flow.style not in STYLES):
            raise NotFoundError(f"no pipeline {name!r}.{did_you_mean(name, stored)}")
        version = repo.deactivate(conn, name) if name in stored else None
        if name in stored and version is None:
            raise DuctworkError(f"pipeline {name!r} is not active; nothing to deactivate")
        if flow is not None:
            flow_repo.set_paused(conn, name, True)
    return version


def sync_stored(engine: Engine, folder: Path) -> list[str]:
    """Write the active versions of stored pipelines to ``folder`` (only when their text
    changed), remove the files of pipelines no longer active, and start the runs asked for by
    on-demand activations once the scheduler knows the activated version. Returns the names of
    the runs started."""
    with read_transaction(engine) as conn:
        active = repo.active_versions(conn)
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, str] = {folder / f"{v.name}{SUFFIX[v.format]}": materialized(v) for v in active}
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(text)
            temporary.replace(path)
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".json", ".yaml") and path not in wanted:
            path.unlink()
    started: list[str] = []
    for version in active:
        if version.run_requested_at is None or version.deactivated_at is not None:
            continue
        with read_transaction(engine) as conn:
            flow = flow_repo.get_flow(conn, version.name)
        if flow is None or not _is_version(flow, version):
            continue
        from ductwork.services import runs as run_service

        with transaction(engine) as conn:  # one transaction: never a moment with neither request nor run
            if repo.claim_run_request(conn, version.name, version.version):
                run_service.trigger(engine, version.name, note=f"activation of version {version.version}", conn=conn)
                started.append(version.name)
    return started


def _is_version(flow: Any, version: repo.PipelineVersion) -> bool:
    return f"version:{version.version}" in flow.tags


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Summary:
    name: str
    source: str
    """``stored`` (put and activated through Ductwork) or the file in the flows folder."""
    format: str
    version: int | None
    schedule: str | None
    state: str
    health: str
    next_run: dt.datetime | None = None
    """When the next scheduled run starts (``Schedule.run_after``, the flows page's "Next run");
    None while the pipeline is inactive or has nothing more to run."""
    next_logical_date: dt.datetime | None = None
    """The logical date (scheduled start of the period) that run is for."""
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "format": self.format,
            "version": self.version,
            "schedule": self.schedule,
            "schedule_state": self.state,
            "health": self.health,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "next_logical_date": self.next_logical_date.isoformat() if self.next_logical_date else None,
            "last_run": self.last_run,
        }


ON_DEMAND = "ondemand"
"""The schedule shown for a pipeline without one (AWS's scheduleType), by the API, the web UI
and the commands alike."""


def shown_schedule(schedule: str | None) -> str | None:
    """A flow's schedule as pipelines show it: the flow of an on-demand pipeline has the schedule
    text "None", which the API gave as is (a client read the text "None" where ``pipelines list``
    says 'ondemand'); None stays None (the scheduler has not parsed the pipeline yet)."""
    if schedule is None:
        return None
    return ON_DEMAND if schedule in ("", "None") else schedule


def _health(conn: Any, flow_id: str) -> tuple[str, dict[str, Any] | None]:
    """AWS's health: ERROR when the latest ended run failed, HEALTHY when it succeeded."""
    ended = run_repo.list_runs(conn, flow_id=flow_id, states=[RunState.SUCCESS, RunState.FAILED], limit=1).items
    if not ended:
        return "NO_COMPLETED_EXECUTIONS", None
    run = ended[0]
    info = {"run_id": run.run_id, "state": run.state.value, "logical_date": run.logical_date.isoformat()}
    return ("HEALTHY" if run.state.value == "success" else "ERROR"), info


def _state(version: repo.PipelineVersion | None, flow: Any, active_runs: int, stored: bool) -> str:
    """AWS's schedule state: PENDING (never activated), SCHEDULED, FINISHED (nothing more to
    run), INACTIVE (deactivated)."""
    if stored and (version is None or not version.is_active):
        return "PENDING"
    if (version is not None and version.deactivated_at is not None) or (flow is not None and flow.is_paused):
        return "INACTIVE"
    if flow is None:
        return "SCHEDULED"  # activated; the scheduler has not parsed it yet
    if active_runs:
        return "SCHEDULED"
    if flow.schedule in ("None", ""):
        if version is not None and version.run_requested_at is not None:
            return "SCHEDULED"
        return "FINISHED"
    return "SCHEDULED" if flow.next_logical_date is not None else "FINISHED"


def list_pipelines(engine: Engine) -> list[Summary]:
    out: list[Summary] = []
    with read_transaction(engine) as conn:
        stored = set(repo.names(conn))
        flows = {f.flow_id: f for f in flow_repo.list_flows(conn, active=None) if f.style in STYLES}
        for name in sorted(stored | {fid for fid, f in flows.items() if f.is_active}):
            flow = flows.get(name)
            version = repo.active_version(conn, name) or repo.latest_version(conn, name)
            active_runs = len(run_repo.active_runs(conn, flow_id=name)) if flow is not None else 0
            health, last = _health(conn, name) if flow is not None else ("NO_COMPLETED_EXECUTIONS", None)
            is_stored = name in stored
            state = _state(version, flow, active_runs, is_stored)
            # The logical date alone read as "next run" is already past when the run starts (an
            # @daily pipeline's next run was "today 00:00" all day); paused: no run is coming.
            coming = flow if state not in ("PENDING", "INACTIVE") else None
            out.append(
                Summary(
                    name=name,
                    source="stored" if is_stored else str(flow.fileloc if flow else ""),
                    format=version.format if version else (flow.style if flow else ""),
                    version=version.version if version else None,
                    schedule=shown_schedule(flow.schedule) if flow else None,
                    state=state,
                    health=health,
                    next_run=next_run_after(coming) if coming else None,
                    next_logical_date=coming.next_logical_date if coming else None,
                    last_run=last,
                )
            )
    return out


def get_summary(engine: Engine, name: str) -> Summary:
    for summary in list_pipelines(engine):
        if summary.name == name:
            return summary
    known = [s.name for s in list_pipelines(engine)]
    raise NotFoundError(f"no pipeline {name!r}.{did_you_mean(name, known)} Pipelines: {', '.join(known) or '(none)'}")


@dataclass
class ObjectInstances:
    """One object (task) of a pipeline and its instances (runs), newest first, with attempts."""

    task_id: str
    object_type: str
    instances: list[dict[str, Any]] = field(default_factory=list)


def describe(engine: Engine, name: str, *, runs: int = 10) -> dict[str, Any]:
    """A pipeline: its summary, stored versions, and each object's latest instances."""
    summary = get_summary(engine, name)
    with read_transaction(engine) as conn:
        history = [
            {
                "version": v.version,
                "format": v.format,
                "created_at": v.created_at.isoformat(),
                "created_by": v.created_by,
                "active": v.is_active,
                "activated_at": v.activated_at.isoformat() if v.activated_at else None,
                "deactivated_at": v.deactivated_at.isoformat() if v.deactivated_at else None,
            }
            for v in repo.versions(conn, name)
        ]
        graph = flow_repo.get_flow_graph(conn, name)
        recent = run_repo.list_runs(conn, flow_id=name, limit=runs).items if graph is not None else []
        objects: dict[str, ObjectInstances] = {}
        if graph is not None:
            for node in graph.nodes.values():
                kind = str(node.extra.get("type") or node.operator)
                objects[node.task_id] = ObjectInstances(node.task_id, kind)
        for run in recent:
            instances = {i.task_id: i for i in task_repo.list_task_instances(conn, run.pk)}
            recorded = run_repo.load_run_graph(conn, run.pk)  # the graph this run ran, modes included
            statuses = instance_statuses(recorded.graph, {t: st.value for t, st in recorded.states.items()})
            for task_id, obj in objects.items():
                instance = instances.get(task_id)
                if instance is None:
                    continue
                start, end = _scheduled_times(graph, run)
                obj.instances.append(
                    {
                        "run_id": run.run_id,
                        "scheduled_start": start.isoformat(),
                        "scheduled_end": end.isoformat(),
                        "status": statuses.get(task_id, aws_status(instance.state.value)),
                        "state": instance.state.value,
                        "attempts": instance.try_number,
                        "start": instance.start_date.isoformat() if instance.start_date else None,
                        "end": instance.end_date.isoformat() if instance.end_date else None,
                    }
                )
    return {
        **summary.to_dict(),
        "versions": history,
        "objects": [{"id": o.task_id, "type": o.object_type, "instances": o.instances} for o in objects.values()],
    }


_AWS_STATUS = {
    "none": "WAITING_ON_DEPENDENCIES",
    "scheduled": "WAITING_ON_DEPENDENCIES",
    "queued": "WAITING_FOR_RUNNER",
    "running": "RUNNING",
    "up_for_retry": "WAITING_FOR_RUNNER",
    "up_for_reschedule": "WAITING_ON_DEPENDENCIES",
    "success": "FINISHED",
    "failed": "FAILED",
    "upstream_failed": "CASCADE_FAILED",
    "skipped": "SKIPPED",
    "removed": "CANCELED",
}


def aws_status(state: str) -> str:
    """An instance's status in AWS Data Pipeline's words."""
    return _AWS_STATUS.get(state, state.upper())


def instance_statuses(graph: Any, states: Mapping[str, str]) -> dict[str, str]:
    """The AWS status of each task instance of one run (task id -> status).

    The engine marks every task below a failure ``upstream_failed``; AWS does that
    (CASCADE_FAILED, and CANCELED for the preconditions of such an object) only to an object
    whose ``failureAndRerunMode`` is cascade and one of whose dependencies failed or
    cascade-failed. With AWS's default, none, the object keeps WAITING_ON_DEPENDENCIES (it waits
    for a re-run of what failed), and so do the objects after it, whatever their mode.
    """
    nodes = graph.nodes if graph is not None else {}
    modes = {
        str(n.extra.get("object")): n.extra["failureAndRerunMode"]
        for n in nodes.values()
        if "failureAndRerunMode" in n.extra
    }
    out: dict[str, str] = {}

    def status(task_id: str) -> str:
        if task_id in out:
            return out[task_id]
        state = states.get(task_id, "none")
        node = nodes.get(task_id)
        extra = node.extra if node is not None else {}
        is_precondition = "node" in extra
        mode = modes.get(str(extra.get("node"))) if is_precondition else extra.get("failureAndRerunMode")
        if state != "upstream_failed" or mode is None or node is None:
            out[task_id] = aws_status(state)
            return out[task_id]
        out[task_id] = "WAITING_ON_DEPENDENCIES"  # while its upstream is looked at (no cycles in a graph)
        failed = any(status(up) in ("FAILED", "CASCADE_FAILED", "CANCELED") for up in node.upstream)
        if mode == "cascade" and failed:
            out[task_id] = "CANCELED" if is_precondition else "CASCADE_FAILED"
        return out[task_id]

    for task_id in states:
        status(task_id)
    return out


def _scheduled_times(graph: Any, run: Any) -> tuple[dt.datetime, dt.datetime]:
    """``@scheduledStartTime`` and ``@scheduledEndTime`` of a run, as its objects saw them: a
    cron-style AWS instance starts when its run's interval ends (``PipelineInfo.scheduled_times``)."""
    from ductwork.declarative.datapipeline.periods import parse_period

    periods = [n.extra.get("cronPeriod") for n in graph.nodes.values()] if graph is not None else []
    period = next((p for p in periods if p), None)
    if period is None:
        return run.data_interval_start, run.data_interval_end
    return run.data_interval_end, parse_period(str(period)).add(run.data_interval_end)


def list_runs(engine: Engine, name: str, *, limit: int = 25) -> list[dict[str, Any]]:
    get_summary(engine, name)
    with read_transaction(engine) as conn:
        runs = run_repo.list_runs(conn, flow_id=name, limit=limit).items
        graph = flow_repo.get_flow_graph(conn, name)
    out: list[dict[str, Any]] = []
    for r in runs:
        start, end = _scheduled_times(graph, r)
        out.append(
            {
                "run_id": r.run_id,
                "run_type": r.run_type,
                "state": r.state.value,
                "scheduled_start": start.isoformat(),
                "scheduled_end": end.isoformat(),
                "start": r.start_date.isoformat() if r.start_date else None,
                "end": r.end_date.isoformat() if r.end_date else None,
            }
        )
    return out
