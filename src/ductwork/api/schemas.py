"""Every request and response body of the REST API, in one place.

Responses are built from store records with the ``*_out`` helpers at the bottom, so routes stay
a few lines each. Large views (grid, run graph) are arrays and strings of state codes rather
than lists of objects: see ``ductwork.store.repo.views``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from ductwork.core.masking import mask_secret_keys
from ductwork.core.params import from_description
from ductwork.services.next_run import next_run_after
from ductwork.store.records import FlowRecord, ImportErrorRecord, PoolUsage, RunRecord, TaskInstanceRecord, TryRecord
from ductwork.store.repo.users import TokenRecord, UserRecord


def _sane_date(value: dt.datetime) -> dt.datetime:
    """Dates a schedule can work with: far-off years overflow date arithmetic."""
    if not 1900 <= value.year <= 9000:
        raise ValueError("the year must be between 1900 and 9000")
    return value


CONF_MAX_BYTES = 1 << 20
"""A run's conf is read by every try of the run and shown with it: at most 1 MiB of JSON."""
NOTE_MAX = 10_000


def _storable_conf(value: dict[str, Any]) -> dict[str, Any]:
    """JSON as it is stored (a run's conf and params, a connection's extra): no NaN or infinity
    (JSON has none; they would come back as null), and not so large that every listing of runs
    carries megabytes."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("numbers must be finite (JSON has no NaN or Infinity)") from None
    if len(text.encode()) > CONF_MAX_BYTES:
        raise ValueError(f"at most {CONF_MAX_BYTES // 1024} KiB of JSON; keep large data in a file or a table")
    return value


SaneDate = Annotated[dt.datetime, AfterValidator(_sane_date)]
"""A date and time from a client (ISO 8601; without a zone: the flow's zone, or UTC in filters)."""

Role = Literal["admin", "operator", "viewer"]
MarkState = Literal["success", "failed", "skipped"]


class TextIn(BaseModel):
    """A request body whose text fields are stored as text columns. PostgreSQL's text cannot
    hold a NUL character: a note, a description or a name with ``\\u0000`` in it ended the
    request with a server error at the INSERT. Refused here, naming the field. (JSON values such
    as a run's conf or a connection's extra keep theirs: they are stored escaped or encrypted.)"""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list | tuple) else (value,)
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("a NUL character (\\u0000) cannot be stored")
        return value


class Model(TextIn):
    model_config = ConfigDict(extra="forbid")


# --- errors and system -----------------------------------------------------------------------
class ErrorOut(BaseModel):
    """Every error the API answers: a message that names the thing, and a stable code."""

    detail: str
    error: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    """Where: ``["query", "limit"]``, ``["body", "params", "n"]``..."""
    msg: str


class ValidationErrorOut(ErrorOut):
    """A request the API could not accept (422): each issue with where it is."""

    errors: list[ValidationIssue] = []


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable", "schema_mismatch"]
    scheduler: Literal["alive", "not_running", "unknown", "waiting_for_database"]
    database_detail: str | None = None
    """With ``schema_mismatch``: what is wrong with the schema and the command that puts it right."""
    scheduler_heartbeat: dt.datetime | None = None
    scheduler_detail: str | None = None
    """From a scheduler in this process (``standalone``): why it waits, or a platform fault."""
    version: str


class ImportErrorOut(BaseModel):
    id: int
    file: str
    line: int | None
    error: str
    traceback: str
    at: dt.datetime


# --- flows -----------------------------------------------------------------------------------
class ParamOut(BaseModel):
    name: str
    type: str
    required: bool
    default: str | None = None
    description: str = ""
    choices: list[Any] | None = None
    nullable: bool = Field(False, description="Whether null is a value (an `int | None` argument, a default of None).")
    json_schema: dict[str, Any] | None = Field(
        None, description="The JSON schema a value must satisfy (type `schema`: an Airflow `Param`)."
    )


class FlowOut(BaseModel):
    flow_id: str
    description: str
    schedule: str
    timezone: str
    owner: str
    tags: list[str]
    style: str
    is_paused: bool
    is_active: bool
    fileloc: str | None
    next_logical_date: dt.datetime | None = Field(
        description="The logical date of the next scheduled run: the start of the data interval it covers."
    )
    next_data_interval_start: dt.datetime | None = None
    next_data_interval_end: dt.datetime | None = None
    next_run_after: dt.datetime | None = Field(
        None,
        description="When the next scheduled run starts (Airflow's Run After): the end of its data interval, "
        "the start date for @once.",
    )
    last_parsed_at: dt.datetime | None
    recent_runs: list[str] = Field(default_factory=list, description="States of the latest runs, newest first.")


class FlowDetailOut(FlowOut):
    doc: str = Field("", description="The flow's documentation (Airflow's doc_md), as written.")
    params: list[ParamOut]
    tasks: int
    max_active_runs: int
    version_hash: str
    assets: str | None = Field(None, description="The asset condition the flow is scheduled on (a | b, a & b).")
    triggers: list[str] = Field(default_factory=list, description="The message sources that start its runs.")
    params_in_conf: bool = Field(
        False,
        description="An Airflow DAG with params: a triggered run's conf holds every param, and a conf is checked "
        "against them.",
    )


class FlowPage(BaseModel):
    items: list[FlowOut]
    total: int
    limit: int
    offset: int


class FlowPatch(Model):
    is_paused: StrictBool
    """true or false only: "yes", 1 or "sometimes" are refused rather than read as true."""


class GraphOut(BaseModel):
    """A graph as arrays: ``upstream[i]`` lists indexes into ``task_ids``; ``states`` has one
    state code per task (see ``codes``)."""

    task_ids: list[str]
    upstream: list[list[int]]
    groups: list[str | None]
    operators: list[str]
    group_parents: dict[str, str | None]
    states: str | None = None
    tries: list[int] | None = None
    codes: dict[str, str]
    reused: dict[str, str] | None = None
    """Tasks that were up to date (``cache="content"``) in this run: task id -> the run whose
    results they took instead of running."""


# --- runs ------------------------------------------------------------------------------------
def _plain_run_id(value: str) -> str:
    """A run id names a folder of logs: no ``/`` (nor NUL). Said in words: the bare pattern
    (``String should match pattern '^[^\\x00/]*$'``) left people guessing which character it was."""
    for bad, name in (("/", "'/'"), ("\x00", "a NUL character")):
        if bad in value:
            raise ValueError(f"a run id may not contain {name}")
    return value


class AssetEventIn(Model):
    uri: Annotated[str, StringConstraints(min_length=1, max_length=700)] = Field(
        description="The asset's URI (``s3://lake/orders``, or an absolute path); it must be known to a flow."
    )
    extra: Annotated[dict[str, Any], AfterValidator(_storable_conf)] = Field(
        default_factory=dict, description="What the update carries (the tasks it starts see it), as a JSON object."
    )


class TriggerIn(Model):
    params: Annotated[dict[str, Any], AfterValidator(_storable_conf)] = Field(
        default_factory=dict,
        description="Values of the flow's typed parameters, by name (checked against their types).",
    )
    conf: Annotated[dict[str, Any], AfterValidator(_storable_conf)] = Field(
        default_factory=dict,
        description="Free-form JSON for the run (Airflow's dag_run.conf); at most 1 MiB. For an Airflow DAG with "
        "params, a value of a param is checked as that param and overrides `params`, and the run's conf gets "
        "every param.",
    )
    logical_date: SaneDate | None = Field(
        default=None, description="ISO 8601; without an offset, in the flow's timezone. Default: now."
    )
    run_id: Annotated[str, StringConstraints(min_length=1, max_length=250), AfterValidator(_plain_run_id)] | None = (
        Field(
            default=None,
            json_schema_extra={"pattern": r"^[^\x00/]*$"},
            description="Default: manual__<logical date>. Unique within the flow; no '/'.",
        )
    )
    note: str | None = Field(default=None, max_length=NOTE_MAX)


class BackfillIn(Model):
    start: SaneDate
    end: SaneDate
    params: Annotated[dict[str, Any], AfterValidator(_storable_conf)] = Field(default_factory=dict)
    rerun_failed: bool = Field(
        False, description="Also clear the failed tasks (with their downstream) of the range's failed runs."
    )
    dry_run: bool = False


class PlannedRunOut(BaseModel):
    run_id: str
    logical_date: dt.datetime
    exists: bool
    tasks: list[str]


class RunOut(BaseModel):
    flow_id: str
    run_id: str
    run_type: str
    state: str
    logical_date: dt.datetime
    data_interval_start: dt.datetime
    data_interval_end: dt.datetime
    params: dict[str, Any]
    conf: dict[str, Any]
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    note: str | None
    version_hash: str
    code: dict[str, Any] | None = Field(
        default=None,
        description='The code the run was created from: {"hash", "files": {file: hash}, "git": {"commit", "dirty"}}.',
    )


class CancelOut(RunOut):
    dry_run: bool = False
    task_ids: list[str] = Field(
        default_factory=list,
        description="The unfinished tasks ended: running ones failed, the others skipped (dry_run: would be).",
    )


class DeletedRunOut(BaseModel):
    flow_id: str
    run_id: str
    state: str
    end_date: dt.datetime | None


class DeletionOut(BaseModel):
    """What a deletion removed, or with ``dry_run`` would remove."""

    dry_run: bool
    cutoff: dt.datetime | None = None
    runs: int
    task_instances: int
    tries: int
    results: int
    events: int
    log_files: int
    offloaded_objects: int
    import_errors: int = 0
    dead_letters: int = 0
    message_receipts: int = Field(
        default=0, description="Message receipts (de-duplication) deleted: kept at least 8 days whatever the age."
    )
    workers: int = Field(default=0, description="Records of remote workers silent (stopped or lost) since the cutoff.")
    code_bundles: int = Field(default=0, description="Code bundles last published before the cutoff (not the newest).")
    sample: list[DeletedRunOut] = Field(description="The first runs deleted (at most 50).")


class CleanIn(Model):
    older_than: str = Field(
        min_length=2,
        max_length=32,
        description="Delete runs that ended longer ago than this: 30d, 12h, 2w, 90min (units s, min, h, d, w; "
        "'m', months and years are refused as ambiguous).",
    )
    flow_id: str | None = Field(default=None, min_length=1, max_length=250, pattern=r"^[^\x00]*$")
    dry_run: bool = False


class BackfillOut(BaseModel):
    dry_run: bool
    planned: list[PlannedRunOut]
    created: list[RunOut]


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class RunStatesOut(BaseModel):
    state: str
    count: int
    states: str
    revision: int
    reason: str = Field(
        default="",
        description="Why a finished run ended so, when something other than its tasks decided it "
        "(cancelled, its run_timeout passed); '' otherwise. A live page shows it as the run ends.",
    )


class GridRunOut(BaseModel):
    run_id: str
    state: str
    run_type: str
    logical_date: dt.datetime
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    states: str


class GridOut(BaseModel):
    """Runs (oldest first, as columns) by tasks (rows): ``runs[j].states[i]`` is the state code
    of ``task_ids[i]`` in run ``j`` (``-``: the run does not have that task)."""

    flow_id: str
    task_ids: list[str]
    groups: list[str | None]
    group_parents: dict[str, str | None]
    runs: list[GridRunOut]
    total_runs: int
    codes: dict[str, str]


class GanttBarOut(BaseModel):
    task_id: str
    try_number: int
    state: str
    start: dt.datetime | None
    end: dt.datetime | None


class GanttOut(BaseModel):
    run_start: dt.datetime | None
    run_end: dt.datetime | None
    bars: list[GanttBarOut]


class EventOut(BaseModel):
    task_id: str | None
    old: str | None
    new: str
    reason: str
    try_number: int
    at: dt.datetime


# --- tasks -----------------------------------------------------------------------------------
class TaskOut(BaseModel):
    task_id: str
    state: str
    try_number: int
    max_tries: int
    operator: str
    upstream: list[str]
    group: str | None
    pool: str
    priority_weight: int
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    next_try_at: dt.datetime | None


class TaskDetailOut(TaskOut):
    definition: dict[str, Any]
    downstream: list[str]
    state_reason: str = Field(
        default="",
        description="Why the task came to its state, as its latest state change recorded it "
        "('cancelled from the web', 'trigger rule all_success'...); what a task that never ran shows.",
    )


class TryOut(BaseModel):
    try_number: int
    state: str
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    error: str | None
    traceback: str | None
    rendered: dict[str, Any] | None
    has_log: bool


class ResultOut(BaseModel):
    key: str
    serializer: str
    size: int
    value: Any = None
    preview: str
    truncated: bool


class ClearIn(Model):
    task_ids: list[str] = Field(min_length=1)
    downstream: bool = False
    upstream: bool = False
    dry_run: bool = False


class MarkIn(Model):
    task_ids: list[str] = Field(min_length=1)
    state: MarkState
    downstream: bool = False
    upstream: bool = False
    dry_run: bool = False


class OtherRunTasksOut(BaseModel):
    """Tasks of another flow's run that a clear reached through an ``ExternalTaskMarker``."""

    flow_id: str
    run_id: str
    task_ids: list[str]


class TaskChangeOut(BaseModel):
    task_ids: list[str]
    dry_run: bool = False


class ClearOut(TaskChangeOut):
    other_runs: list[OtherRunTasksOut] = []
    """Tasks of other flows' runs cleared with these (``ExternalTaskMarker``)."""


# --- pools -----------------------------------------------------------------------------------
class PoolIn(Model):
    slots: int = Field(ge=0, le=1_000_000)
    description: str | None = Field(
        default=None, max_length=10_000, description="Left out (or null): the pool keeps the one it has."
    )


class PoolOut(BaseModel):
    name: str
    slots: int
    description: str
    queued_slots: int
    running_slots: int
    open_slots: int


class PoolDeletionOut(BaseModel):
    name: str
    slots: int
    running_slots: int
    queued_slots: int
    waiting_tasks: int = Field(description="Unfinished tasks of active runs that name the pool.")
    dry_run: bool


# --- Luigi's view ----------------------------------------------------------------------------
class FamilyOut(BaseModel):
    family: str
    counts: dict[str, int]


class FamiliesOut(BaseModel):
    states: list[str]
    families: list[FamilyOut]
    runs: int


class LuigiTaskOut(BaseModel):
    flow_id: str
    run_id: str
    task_id: str
    family: str
    state: str
    luigi_state: str
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    hostname: str | None
    pid: int | None


class LuigiTaskPage(BaseModel):
    items: list[LuigiTaskOut]
    total: int
    limit: int
    offset: int


class WorkerOut(BaseModel):
    hostname: str
    pid: int | None
    last_heartbeat: dt.datetime | None
    tasks: list[LuigiTaskOut]


class SchedulerJobOut(BaseModel):
    id: int
    kind: str
    hostname: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    alive: bool


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    schedulers: list[SchedulerJobOut]


class ResourceOut(BaseModel):
    name: str
    limit: int | None
    used: int


class ResourcesOut(BaseModel):
    resources: list[ResourceOut]
    pools: list[PoolOut]


# --- access ----------------------------------------------------------------------------------
class UserOut(BaseModel):
    username: str
    role: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class MeOut(UserOut):
    via: Literal["session", "token"]


class UserIn(Model):
    username: str = Field(min_length=1, max_length=250, pattern=r"\S")
    """Any text with something besides blanks in it (a name of spaces is refused with a 422)."""
    password: str = Field(min_length=8, max_length=1000)
    role: Role = "viewer"


class UserChange(Model):
    """Either or both; each ends the user's browser sessions."""

    password: str | None = Field(default=None, min_length=8, max_length=1000)
    role: Role | None = None


class TokenIn(Model):
    name: str = Field(min_length=1, max_length=250)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    username: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only as a digest.")


# --- records to responses --------------------------------------------------------------------
def plain(value: Any) -> Any:
    """JSON-safe data: values the store decodes richer than JSON (dates, sets, decimals) as text."""
    return json.loads(json.dumps(value, default=str))


def params_out(params: dict[str, Any]) -> list[ParamOut]:
    out = []
    for name, info in params.items():
        param = from_description(info)
        out.append(
            ParamOut(
                name=name,
                type=str(info.get("type", "str")),
                required=param.required,
                default=None if param.required or param.default is None else param.serialize(param.default),
                description=str(info.get("description", "")),
                choices=list(info["choices"]) if "choices" in info else None,
                nullable=param.takes_null(),
                json_schema=dict(info["schema"]) if isinstance(info.get("schema"), Mapping) else None,
            )
        )
    return out


def flow_out(record: FlowRecord, recent: list[str] | None = None) -> FlowOut:
    return FlowOut(
        flow_id=record.flow_id,
        description=record.description,
        schedule=record.schedule,
        timezone=record.timezone,
        owner=record.owner,
        tags=list(record.tags),
        style=record.style,
        is_paused=record.is_paused,
        is_active=record.is_active,
        fileloc=record.fileloc,
        next_logical_date=record.next_logical_date,
        next_data_interval_start=record.next_interval_start,
        next_data_interval_end=record.next_interval_end,
        next_run_after=next_run_after(record),
        last_parsed_at=record.last_parsed_at,
        recent_runs=recent or [],
    )


def run_out(record: RunRecord) -> RunOut:
    return RunOut(
        flow_id=record.flow_id,
        run_id=record.run_id,
        run_type=record.run_type,
        state=record.state.value,
        logical_date=record.logical_date,
        data_interval_start=record.data_interval_start,
        data_interval_end=record.data_interval_end,
        params=mask_secret_keys(plain(dict(record.params))),  # a "*password" parameter, as conf
        conf=mask_secret_keys(plain(dict(record.conf))),  # shown to every viewer, as on the run page
        queued_at=record.queued_at,
        start_date=record.start_date,
        end_date=record.end_date,
        note=record.note,
        version_hash=record.version_hash,
        code=plain(dict(record.code)) if record.code else None,
    )


def task_out(record: TaskInstanceRecord) -> TaskOut:
    return TaskOut(
        task_id=record.task_id,
        state=record.state.value,
        try_number=record.try_number,
        max_tries=record.max_tries,
        operator=record.operator,
        upstream=list(record.upstream),
        group=record.group_id,
        pool=record.pool,
        priority_weight=record.priority_weight,
        start_date=record.start_date,
        end_date=record.end_date,
        duration=record.duration,
        hostname=record.hostname,
        pid=record.pid,
        next_try_at=record.next_try_at,
    )


def try_out(record: TryRecord) -> TryOut:
    return TryOut(
        try_number=record.try_number,
        state=record.state.value,
        start_date=record.start_date,
        end_date=record.end_date,
        duration=record.duration,
        hostname=record.hostname,
        pid=record.pid,
        error=record.error,
        traceback=record.traceback,
        rendered=plain(dict(record.rendered)) if record.rendered is not None else None,
        has_log=bool(record.log_path),
    )


def pool_out(usage: PoolUsage, description: str = "") -> PoolOut:
    return PoolOut(
        name=usage.name,
        slots=usage.slots,
        description=description,
        queued_slots=usage.queued_slots,
        running_slots=usage.running_slots,
        open_slots=usage.open_slots,
    )


def import_error_out(record: ImportErrorRecord) -> ImportErrorOut:
    return ImportErrorOut(
        id=record.id,
        file=record.fileloc,
        line=record.line,
        error=record.error,
        traceback=record.traceback,
        at=record.at,
    )


def user_out(record: UserRecord) -> UserOut:
    return UserOut(
        username=record.username, role=record.role, created_at=record.created_at, last_login_at=record.last_login_at
    )


def token_out(record: TokenRecord) -> TokenOut:
    return TokenOut(
        id=record.id,
        username=record.username,
        name=record.name,
        prefix=record.prefix,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
    )


def deletion_out(report: Any) -> DeletionOut:
    """A ``services.cleanup.CleanReport`` as the API returns it."""
    return DeletionOut(
        dry_run=report.dry_run,
        cutoff=report.cutoff,
        runs=report.runs,
        task_instances=report.task_instances,
        tries=report.tries,
        results=report.results,
        events=report.events,
        log_files=report.log_files,
        offloaded_objects=report.objects,
        import_errors=report.import_errors,
        dead_letters=report.dead_letters,
        message_receipts=report.message_receipts,
        workers=report.workers,
        code_bundles=report.bundles,
        sample=[
            DeletedRunOut(flow_id=r.flow_id, run_id=r.run_id, state=r.state, end_date=r.end_date) for r in report.sample
        ],
    )


# --- the audit log ---------------------------------------------------------------------------
class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    via: str
    origin: str
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


def audit_out(record: Any) -> AuditOut:
    return AuditOut(
        id=record.id,
        at=record.at,
        actor=record.actor,
        via=record.via,
        origin=record.origin,
        action=record.action,
        target=record.target,
        details=dict(record.details),
    )


# --- connections and variables -----------------------------------------------------------------
class ConnectionIn(Model):
    uri: str | None = Field(default=None, max_length=10_000, description="type://login:password@host:port/schema")
    conn_type: str | None = Field(default=None, max_length=64)
    host: str | None = Field(default=None, max_length=10_000)
    port: int | None = Field(default=None, ge=0, le=65535)
    login: str | None = Field(default=None, max_length=10_000)
    password: str | None = Field(default=None, max_length=10_000)
    schema_: str | None = Field(default=None, alias="schema", max_length=10_000)
    extra: Annotated[dict[str, Any], AfterValidator(_storable_conf)] | None = Field(
        default=None, description="A JSON object (finite numbers; at most 1 MiB)."
    )
    description: str = Field(default="", max_length=10_000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectionOut(BaseModel):
    conn_id: str
    conn_type: str
    host: str | None
    port: int | None
    schema_: str | None = Field(alias="schema", serialization_alias="schema")
    login: str | None
    password: str | None = Field(description="*** when the connection has one; never the password.")
    extra: dict[str, Any]
    description: str

    model_config = ConfigDict(populate_by_name=True)


class VariableIn(Model):
    value: str = Field(max_length=1_000_000)
    description: str = Field(default="", max_length=10_000)


class VariableOut(BaseModel):
    key: str
    value: str
    encrypted: bool
    description: str


# --- comparing two runs ------------------------------------------------------------------------
class TaskChangeDiffOut(BaseModel):
    task_id: str
    fields: dict[str, list[Any]] = Field(description="Field name to [value in the first run, value in the second].")


class RunDiffOut(BaseModel):
    flow_id: str
    first: RunOut
    second: RunOut
    same_graph: bool
    same_code: bool
    added: list[str]
    removed: list[str]
    changed: list[TaskChangeDiffOut]
    edges_added: list[list[str]]
    edges_removed: list[list[str]]
    flow_changes: dict[str, list[Any]]
    files_added: list[str]
    files_removed: list[str]
    files_changed: list[str]


def run_diff_out(diff: Any) -> RunDiffOut:
    return RunDiffOut(
        flow_id=diff.flow_id,
        first=run_out(diff.first),
        second=run_out(diff.second),
        same_graph=diff.same_graph,
        same_code=diff.same_code,
        added=diff.added,
        removed=diff.removed,
        changed=[
            TaskChangeDiffOut(task_id=c.task_id, fields={k: plain(list(v)) for k, v in c.fields.items()})
            for c in diff.changed
        ],
        edges_added=[list(e) for e in diff.edges_added],
        edges_removed=[list(e) for e in diff.edges_removed],
        flow_changes={k: plain(list(v)) for k, v in diff.flow_changes.items()},
        files_added=diff.files_added,
        files_removed=diff.files_removed,
        files_changed=diff.files_changed,
    )
