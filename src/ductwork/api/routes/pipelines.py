"""Declarative pipelines over HTTP: list them as the AWS console does, describe one object by
object, store a version, activate and deactivate, validate a definition, and the JSON Schema of
Ductwork's pipeline files (for editors). Reading needs a login; changing, an operator."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS
from ductwork.api.schemas import TextIn
from ductwork.api.security import Admin, Operator, Viewer
from ductwork.declarative.problems import PipelineDefinitionError
from ductwork.errors import DuctworkError
from ductwork.services import pipelines as service

router = APIRouter(tags=["pipelines"], responses=ERRORS)

PipelineName = Annotated[str, Path(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]


class LastRunOut(BaseModel):
    run_id: str
    state: str
    logical_date: str


class PipelineOut(BaseModel):
    name: str
    source: str = Field(description="'stored' (put and activated), or the file in the flows folder")
    format: str = Field(description="aws-datapipeline or yaml")
    version: int | None
    schedule: str | None = Field(
        description="the schedule ('1d', a cron text...), 'ondemand' for a pipeline without one (AWS's scheduleType); "
        "null until the scheduler has parsed the pipeline"
    )
    schedule_state: str = Field(description="PENDING, SCHEDULED, FINISHED or INACTIVE")
    health: str = Field(description="HEALTHY, ERROR or NO_COMPLETED_EXECUTIONS")
    next_run: str | None = Field(
        description="when the next scheduled run starts (UTC), as the flows page's Next run: the end of "
        "its period for a cron or rate schedule; null while inactive or when nothing more is scheduled"
    )
    next_logical_date: str | None = Field(description="the scheduled start of the period that run is for")
    last_run: LastRunOut | None


class InstanceOut(BaseModel):
    run_id: str
    scheduled_start: str
    scheduled_end: str
    status: str = Field(description="the instance's status in AWS Data Pipeline's words")
    state: str
    attempts: int
    start: str | None
    end: str | None


class ObjectOut(BaseModel):
    id: str
    type: str
    instances: list[InstanceOut]


class VersionOut(BaseModel):
    version: int
    format: str
    created_at: str
    created_by: str
    active: bool
    activated_at: str | None
    deactivated_at: str | None


class PipelineDetailOut(PipelineOut):
    versions: list[VersionOut]
    objects: list[ObjectOut]


class PipelineRunOut(BaseModel):
    run_id: str
    run_type: str
    state: str
    scheduled_start: str
    scheduled_end: str
    start: str | None
    end: str | None


class DefinitionIn(TextIn):
    definition: str = Field(min_length=1, max_length=2_000_000, description="the file's text")
    format: Literal["json", "yaml"] = Field("json", description="json (AWS definition or Ductwork JSON) or yaml")


class PutOut(BaseModel):
    name: str
    version: int
    format: str
    created: bool
    tasks: list[str]


class ActivateIn(TextIn):
    version: int | None = Field(None, ge=1, description="the version to activate; the latest by default")
    allow_backfill: bool = Field(False, description="activate even if the schedule starts more than a day ago")


class ValidateOut(BaseModel):
    valid: bool
    problems: list[str]
    tasks: list[str]


def _filename(name: str, fmt: str) -> str:
    return f"{name}.{'json' if fmt == 'json' else 'yaml'}"


@router.get("/pipelines", response_model=list[PipelineOut], dependencies=[Viewer])
def list_pipelines(ctx: WebContext = Depends(web_context)) -> list[dict[str, Any]]:
    """Every pipeline (stored, or a declarative file of the flows folder) with its schedule state and health."""
    return [s.to_dict() for s in service.list_pipelines(ctx.engine)]


@router.get("/pipelines/schema", dependencies=[Viewer])
def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema of Ductwork's pipeline files, for the operators installed here."""
    from ductwork.declarative.yamlflow.schema import build_schema

    return build_schema()


@router.post("/pipelines/validate", response_model=ValidateOut, dependencies=[Viewer])
def validate_pipeline(body: DefinitionIn, ctx: WebContext = Depends(web_context)) -> ValidateOut:
    """Check a definition without storing it: every problem, with object id, field and position."""
    filename = _filename("pipeline", body.format)
    try:
        fmt = service.detect_format(body.definition, filename)
        graph = service.check(body.definition, fmt, source=filename)
    except service.InvalidPipelineError as exc:
        return ValidateOut(
            valid=False, problems=[f"line {e.line}: {e.error}" if e.line else e.error for e in exc.errors], tasks=[]
        )
    except PipelineDefinitionError as exc:  # not JSON/YAML: the problem names its line
        return ValidateOut(valid=False, problems=[p.located() for p in exc.problems], tasks=[])
    except DuctworkError as exc:  # a file that is no pipeline at all
        return ValidateOut(valid=False, problems=[str(exc)], tasks=[])
    return ValidateOut(valid=True, problems=[], tasks=list(graph.nodes))


@router.get("/pipelines/{name}", response_model=PipelineDetailOut, dependencies=[Viewer])
def describe_pipeline(
    name: PipelineName,
    ctx: WebContext = Depends(web_context),
    runs: int = Query(10, ge=1, le=100, description="instances per object"),
) -> dict[str, Any]:
    """A pipeline, its stored versions, and each object's latest instances with their attempts."""
    return service.describe(ctx.engine, name, runs=runs)


@router.get("/pipelines/{name}/runs", response_model=list[PipelineRunOut], dependencies=[Viewer])
def list_pipeline_runs(
    name: PipelineName, ctx: WebContext = Depends(web_context), limit: int = Query(25, ge=1, le=500)
) -> list[dict[str, Any]]:
    return service.list_runs(ctx.engine, name, limit=limit)


@router.put("/pipelines/{name}", response_model=PutOut, dependencies=[Admin])
def put_pipeline(name: PipelineName, body: DefinitionIn, ctx: WebContext = Depends(web_context)) -> PutOut:
    """Validate a definition and store it as the next version of ``name`` (nothing is stored if
    any problem is found: 400 with every problem). Admins only: a definition is code (shell
    commands, operators, templates reading connections) that runs on the workers; operators
    activate and deactivate what is stored."""
    result = service.put(
        ctx.engine, body.definition, filename=_filename(name, body.format), name=name, created_by="api"
    )
    v = result.version
    return PutOut(name=v.name, version=v.version, format=v.format, created=result.created, tasks=result.tasks)


@router.post("/pipelines/{name}/activate", response_model=PipelineOut, dependencies=[Operator])
def activate_pipeline(
    name: PipelineName, body: ActivateIn | None = None, ctx: WebContext = Depends(web_context)
) -> dict[str, Any]:
    """Make a version run (validated again first); an on-demand pipeline gets a run."""
    service.activate(
        ctx.engine, name, version=body.version if body else None, allow_backfill=bool(body and body.allow_backfill)
    )
    return service.get_summary(ctx.engine, name).to_dict()


@router.post("/pipelines/{name}/deactivate", response_model=PipelineOut, dependencies=[Operator])
def deactivate_pipeline(name: PipelineName, ctx: WebContext = Depends(web_context)) -> dict[str, Any]:
    """Pause a pipeline: no new runs until it is activated again."""
    service.deactivate(ctx.engine, name)
    return service.get_summary(ctx.engine, name).to_dict()
