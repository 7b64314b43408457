"""The child process that imports user code for the scheduler (ADR 0001).

``python -m ductwork.engine.parse_child parse FILE OUT`` imports one flow file and writes its
serialized graphs and import errors to OUT as JSON. ``... parse-many OUT`` reads a list of files
(and a progress file) from OUT and imports them one after the other, appending each file's
result to the progress file as soon as it has it: one interpreter start for many files.
``... materialize FILE FLOW_ID OUT`` reads a request (params, logical date) from OUT and
writes the graph of one run of a flow whose graph depends on the run (class-task flows).
Anything the user code prints goes to this process's stdout/stderr, never into the result.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from ductwork.core.config import ParamSources, use_sources
from ductwork.gc_tuning import tune_collector


def _parse(file: str) -> dict[str, Any]:
    from ductwork.core.connections import variables_read
    from ductwork.import_guard import guarded_import
    from ductwork.loading import load_file

    # os._exit() at import: an error naming its line, not a dead child
    with guarded_import(None), variables_read() as variables:
        loaded = load_file(file)
    graphs = []
    lines = {}
    code = {}
    errors = [{"file": e.file, "line": e.line, "error": e.error, "traceback": e.traceback} for e in loaded.errors]
    for flow in loaded.flows:
        try:
            graphs.append(flow.to_graph().to_dict())
            lines[flow.flow_id] = flow.defined_at[1]
            code[flow.flow_id] = _code_of(flow)
        except Exception as exc:  # validated once already; a failure here is still the file's error
            errors.append(
                {"file": file, "line": flow.defined_at[1], "error": str(exc), "traceback": traceback.format_exc()}
            )
    paths = sorted({str(p) for flow in loaded.flows for p in _paths_of(flow)})
    return {
        "graphs": graphs,
        "errors": errors,
        "lines": lines,
        "code": code,
        "code_paths": paths,
        "variables": sorted(variables),
        "settings_files": sorted({p for flow in loaded.flows for p in _config_files(flow)}),
    }


def _paths_of(flow: Any) -> list[Any]:
    from ductwork.engine.code_info import code_files

    try:
        return sorted([*code_files(flow), *_config_files(flow)])
    except Exception:
        return []


def _config_files(flow: Any) -> list[str]:
    """The settings files a ``Flow.from_task`` flow's parameter defaults are read from
    (luigi.cfg, luigi.toml, ductwork.toml): editing one changes the flow as editing its code."""
    cls = getattr(flow, "configured_from", None)
    if cls is None:
        return []
    import os

    paths = []
    try:
        file_path = cls.configured_sources().file_path
    except Exception:  # a settings file that does not read: the run's own resolution says so
        file_path = None
    if file_path:
        paths.append(os.path.abspath(file_path))
    for name in ("ductwork.compat.luigi.configuration.core", "luigi.configuration.core"):  # the shim, as imported
        luigi_config = sys.modules.get(name)
        if luigi_config is not None and hasattr(luigi_config, "config_files"):
            paths += luigi_config.config_files()
            break
    return paths


def _code_of(flow: Any) -> dict[str, Any] | None:
    """The flow's code fingerprint; a flow is still recorded when its files cannot be hashed."""
    from ductwork.engine.code_info import flow_code

    try:
        return flow_code(flow, git_heads=_GIT_HEADS)
    except Exception:
        return None


_GIT_HEADS: dict[Any, str | None] = {}
"""Each folder's checked-out commit, for the one batch this short-lived process parses."""


def _parse_many(files: list[str], progress: Path) -> dict[str, Any]:
    with progress.open("a", encoding="utf-8") as report:
        for file in files:
            try:
                result = _parse(file)
            except Exception as exc:
                result = {"fatal": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            report.write(json.dumps({"file": file, **result}, default=str) + "\n")
            report.flush()
    return {"batch": len(files)}


def _materialize(file: str, flow_id: str, request: dict[str, Any]) -> dict[str, Any]:
    from ductwork.loading import load_flow

    flow = load_flow(f"{file}:{flow_id}", Path(file).parent)
    params = flow.resolve_params(request.get("params") or {})
    logical_date = dt.datetime.fromisoformat(request["logical_date"])
    graph, runners = flow.materialize(params=params, logical_date=logical_date)
    _refuse_memory_targets(runners.values())
    return {"graph": graph.to_dict()}


def _refuse_memory_targets(runners: Any) -> None:
    """Under the scheduler each task runs in a worker process of its own, so a ``MemoryTarget``
    one task writes is invisible to the tasks that need it (they would fail at random, as
    "unfulfilled dependencies"): such a run is refused before anything runs."""
    from ductwork.core.targets import MemoryTarget
    from ductwork.core.task import flatten
    from ductwork.errors import DefinitionError

    for runner in runners:
        task = getattr(runner, "task", None)
        if task is None:
            continue
        memory = [t for t in flatten(task.output()) if isinstance(t, MemoryTarget)]
        if memory:
            raise DefinitionError(
                f"task {task.task_id} writes {memory[0]!r}: a MemoryTarget lives in the memory of one process, "
                "and under the scheduler every task runs in a worker process of its own, so the tasks that "
                "need it would not see it. Use LocalTarget (or an fsspec target) for flows the scheduler "
                "runs; MemoryTarget is for `ductwork run`, `ductwork build` and tests, where one process "
                "runs every task"
            )


def _callback(file: str, flow_id: str, request: dict[str, Any]) -> dict[str, Any]:
    from ductwork.engine.local import call_flow_callbacks
    from ductwork.loading import load_flow

    flow = load_flow(f"{file}:{flow_id}", Path(file).parent)
    info = _run_info(flow, flow_id, request)
    extra = {"reason": request["reason"]} if request.get("reason") else None
    errors: list[str] = []
    called = call_flow_callbacks(flow, request["state"], info, extra=extra, errors=errors)
    return {"called": called, "errors": errors}


def _run_info(flow: Any, flow_id: str, request: dict[str, Any]) -> Any:
    from ductwork.core.context import RunInfo
    from ductwork.core.schedule import get_timezone

    def when(key: str) -> dt.datetime:
        return dt.datetime.fromisoformat(request[key])

    return RunInfo(
        flow_id=flow_id,
        run_id=request["run_id"],
        logical_date=when("logical_date"),
        data_interval_start=when("data_interval_start"),
        data_interval_end=when("data_interval_end"),
        params=request.get("params") or {},
        conf=request.get("conf") or {},
        run_type=request.get("run_type", "scheduled"),
        timezone=get_timezone(flow.tz),
    )


def _task_alerts(file: str, flow_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """The callbacks and e-mail of a try its worker could not end itself (``parsing.TASK_ALERTS``)."""
    from ductwork.core.states import TaskState
    from ductwork.engine import task_env
    from ductwork.engine.execution import lost_try_alerts
    from ductwork.engine.services_setup import local_task_services
    from ductwork.loading import load_flow
    from ductwork.settings import Settings

    services = local_task_services(Settings.load())
    task_env.withhold()  # the flow's code runs next: Ductwork's secrets leave the environment
    flow = load_flow(f"{file}:{flow_id}", Path(file).parent)
    task_id = request["task_id"]
    operator = flow.tasks.get(task_id) or flow.tasks.get(task_id.split("[", 1)[0])
    if operator is None and request.get("node"):  # a class task: made from the run's node
        from ductwork.core.graph import NodeSpec

        try:
            operator = flow.resolve_operator(NodeSpec.from_dict(request["node"]))
        except Exception:
            operator = None
    if operator is None:  # removed from the file since, or a task a run added (dynamic)
        return {"called": 0}
    info = _run_info(flow, flow_id, request)
    state = TaskState(request["task_state"])
    called = lost_try_alerts(operator, info, task_id, int(request["try_number"]), state, request["error"], services)
    return {"called": called}


def _render(file: str, flow_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """``ductwork tasks render`` for the API, which must not import user code (ADR 0001)."""
    from ductwork.engine import task_env
    from ductwork.engine.services_setup import local_task_services
    from ductwork.errors import DuctworkError, NotFoundError, ParameterError
    from ductwork.loading import load_flow
    from ductwork.services.render import render_task
    from ductwork.settings import Settings

    try:
        services = local_task_services(Settings.load())
        task_env.withhold()  # the flow's code runs next: Ductwork's secrets leave the environment
        flow = load_flow(f"{file}:{flow_id}", Path(file).parent)
        when = request.get("logical_date")
        rendered = render_task(
            flow,
            request["task_id"],
            logical_date=dt.datetime.fromisoformat(when) if when else None,
            params=request.get("params") or {},
            services=services,
        )
    except DuctworkError as exc:
        kind = "not_found" if isinstance(exc, NotFoundError) else "parameter" if isinstance(exc, ParameterError) else ""
        return {"error": {"kind": kind, "message": str(exc)}}
    return {"rendered": json.loads(json.dumps(rendered, default=str))}


def main(argv: list[str]) -> int:
    tune_collector()  # a flow file of thousands of tasks parses a tenth faster
    command, *args = argv
    out = Path(args[-1])
    try:
        with use_sources(ParamSources.load()):
            if command == "parse":
                result = _parse(args[0])
            elif command == "parse-many":
                request = json.loads(out.read_text())
                result = _parse_many(request["files"], Path(request["progress"]))
            elif command == "materialize":
                request = json.loads(out.read_text()) if out.exists() else {}
                result = _materialize(args[0], args[1], request)
            elif command == "render":
                request = json.loads(out.read_text()) if out.exists() else {}
                result = _render(args[0], args[1], request)
            elif command == "callback":  # parsing.FLOW_CALLBACKS
                request = json.loads(out.read_text()) if out.exists() else {}
                result = _callback(args[0], args[1], request)
            elif command == "task-alerts":  # parsing.TASK_ALERTS
                request = json.loads(out.read_text()) if out.exists() else {}
                result = _task_alerts(args[0], args[1], request)
            else:
                result = {"fatal": f"unknown command {command!r}"}
    except Exception as exc:
        result = {"fatal": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
