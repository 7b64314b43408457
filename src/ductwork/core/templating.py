"""Jinja2 rendering of templated operator fields, in a sandbox.

Operators list their templated attributes in ``template_fields``; before ``execute`` the engine
renders each one against the task context. Rendering is sandboxed (templates cannot reach
Python internals) and strict (an undefined name is an error, not an empty string), and an
error names the task, the field and the template line.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from ductwork.errors import DuctworkError, TemplateError


def _ds_add(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def _ds_format(ds: str, input_format: str, output_format: str) -> str:
    return dt.datetime.strptime(ds, input_format).strftime(output_format)


def _ds_nodash(ds: str) -> str:
    return ds.replace("-", "")


MACROS: Mapping[str, Any] = {
    "ds_add": _ds_add,
    "ds_format": _ds_format,
    "ds_nodash": _ds_nodash,
    "datetime": dt.datetime,
    "date": dt.date,
    "timedelta": dt.timedelta,
    "timezone": dt.timezone,
    "json": {"dumps": json.dumps, "loads": json.loads},
}
"""Functions available as ``macros.NAME`` in every template (Airflow's names):
``macros.ds_add('2024-01-31', -7)``, ``macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y')``,
``macros.datetime``, ``macros.timedelta(days=1)``, ``macros.json.dumps(x)``, and from
python-dateutil ``macros.relativedelta(months=1)``, ``macros.dateutil.relativedelta`` and
``macros.dateutil.parse(text)``."""


FILTERS: Mapping[str, Callable[[Any], str]] = {
    "ds": lambda value: value.strftime("%Y-%m-%d"),
    "ds_nodash": lambda value: value.strftime("%Y%m%d"),
    "ts": lambda value: value.isoformat(),
    "ts_nodash": lambda value: value.strftime("%Y%m%dT%H%M%S"),
    "ts_nodash_with_tz": lambda value: value.isoformat().replace("-", "").replace(":", ""),
}
"""Filters for dates and datetimes, with Airflow's names: ``{{ data_interval_end | ds }}``,
``{{ logical_date | ts_nodash }}``."""


def _dateutil_macros() -> dict[str, Any]:
    try:
        from dateutil import parser, relativedelta
    except ImportError:  # pragma: no cover - croniter depends on python-dateutil
        return {}
    namespace = _Namespace({"relativedelta": relativedelta.relativedelta, "parse": parser.parse})
    return {"relativedelta": relativedelta.relativedelta, "dateutil": namespace}


@functools.cache
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    macros = {k: _Namespace(v) if isinstance(v, dict) else v for k, v in MACROS.items()}
    env.globals["macros"] = _Namespace({**macros, **_dateutil_macros()})
    env.filters.update(FILTERS)
    return env


@functools.lru_cache(maxsize=256)
def _loading_environment(searchpath: tuple[str, ...]) -> Any:
    """The sandboxed environment with a loader on ``searchpath``: one per flow's folders."""
    from jinja2 import FileSystemLoader

    return _environment().overlay(loader=FileSystemLoader(list(searchpath)))


def _searchpath(context: Mapping[str, Any]) -> tuple[str, ...]:
    """Where ``{% include %}``, ``{% import %}`` and ``{% extends %}`` find templates: the flow
    file's folder, then its ``template_searchpath``, as Airflow's ``DAG.get_template_env``
    loads them (without a loader, Jinja failed with "no loader for this environment
    specified"). The flow is the context's ``dag`` (Airflow DAG files) or its task's flow."""
    flow = context.get("dag")
    if flow is None:
        flow = getattr(context.get("task"), "flow", None)
    if flow is None:
        return ()
    import os

    fileloc = getattr(flow, "fileloc", None)
    folders = [os.path.dirname(os.path.abspath(fileloc))] if isinstance(fileloc, str) and fileloc else []
    extra = getattr(flow, "template_searchpath", None) or ()
    folders += [str(extra)] if isinstance(extra, (str, os.PathLike)) else [str(f) for f in extra]
    return tuple(dict.fromkeys(folders))


class _Namespace:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def render_string(text: str, context: Mapping[str, Any], *, task_id: str = "", field: str = "", file: str = "") -> str:
    """Render one template string; raise ``TemplateError`` naming task, field, the template file
    the text was read from (if it was) and line."""
    if "{{" not in text and "{%" not in text:
        return str(text)
    from jinja2 import TemplateError as JinjaError
    from jinja2 import TemplateSyntaxError

    environment = _environment()
    if "{%" in text:  # an include, import or extends may name a file
        searchpath = _searchpath(context)
        if searchpath:
            environment = _loading_environment(searchpath)
    try:
        return str(environment.from_string(text).render(**context))
    except TemplateSyntaxError as exc:
        where = _where(task_id, field, exc.lineno, file)
        raise TemplateError(where + f"template syntax error: {exc.message}") from None
    except JinjaError as exc:
        raise TemplateError(_where(task_id, field, _error_line(exc), file) + f"{exc}") from None
    except DuctworkError as exc:  # a missing connection or variable, bad JSON in a variable...
        raise TemplateError(_where(task_id, field, _error_line(exc), file) + f"{exc}") from None
    except Exception as exc:
        where = _where(task_id, field, _error_line(exc), file)
        raise TemplateError(where + f"{type(exc).__name__}: {exc}") from None


_PLAIN_LEAVES = frozenset({int, float, bool, type(None), bytes})


def render_value(
    value: Any, context: Mapping[str, Any], *, task_id: str = "", field: str = "", keep_refs: bool = False
) -> Any:
    """Render strings inside lists, tuples and dicts too; a task output (``other.output``) or
    a run parameter reference becomes its value, as it is (not as text), unless ``keep_refs``
    (for the record of what was rendered); other values pass unchanged."""
    if type(value) in _PLAIN_LEAVES:  # most arguments: no attribute lookup that fails
        return value
    native = getattr(value, "resolve_template", None)
    if callable(native):
        return value if keep_refs else native(context)
    kw = {"task_id": task_id, "field": field, "keep_refs": keep_refs}
    if isinstance(value, str):
        return render_string(value, context, task_id=task_id, field=field)
    if isinstance(value, list):
        return [render_value(v, context, **kw) for v in value]  # type: ignore[arg-type]
    if isinstance(value, tuple):
        return tuple(render_value(v, context, **kw) for v in value)  # type: ignore[arg-type]
    if isinstance(value, dict):
        return {k: render_value(v, context, **kw) for k, v in value.items()}  # type: ignore[arg-type]
    return value


def _where(task_id: str, field: str, line: int | None, file: str = "") -> str:
    parts = []
    if task_id:
        parts.append(f"task {task_id!r}")
    if field:
        parts.append(f"field {field!r}")
    if file:
        parts.append(f"template file {file}")
    if line:
        parts.append(f"line {line}")
    return (", ".join(parts) + ": ") if parts else ""


def _error_line(exc: BaseException) -> int | None:
    """The template line of an error raised while rendering, from the traceback."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


Renderer = Callable[[Any, Mapping[str, Any]], Any]
