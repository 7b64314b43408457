"""From an AWS Data Pipeline definition to a Ductwork flow: validation and compilation.

``compile_definition`` checks the whole definition first and raises one
``PipelineDefinitionError`` listing every problem (object id, field, expression position), so
nothing is stored, activated or run from an invalid definition. Then it builds a ``Flow`` of
ordinary operators, which the engine runs like any other flow:

- every activity and data node becomes a task named by its id; ``dependsOn`` and the
  ``input``/``output`` references become edges (input data node -> activity -> output data node);
- a ``precondition`` of an object becomes a sensor task ``<object>.<precondition>`` upstream of
  it, polling every ``retryDelay`` until ``preconditionTimeout`` (or ``maximumRetries`` checks);
- ``onSuccess``/``onFail`` actions become tasks ``<object>.onSuccess.<action>`` and
  ``<object>.onFail.<action>`` after it, with the trigger rule that fits, and ``onLateAction`` a
  task that waits for the object's deadline (``lateAfterTimeout`` after the scheduled start);
- ``maximumRetries``/``retryDelay``/``attemptTimeout`` become the task's retries, retry delay and
  execution timeout, ``workerGroup`` its queue, ``failureAndRerunMode`` decides whether a failure
  cascades to consumers' actions and whether a re-run of the object re-runs its consumers;
- the (single) ``Schedule`` becomes the flow's schedule; ``scheduleType`` decides whether a run
  covers the period that just ended (timeseries) or the one that starts (cron); ``ondemand`` is
  a flow without a schedule, run per activation or trigger;
- ``parameters`` (with ``values``) become the flow's typed run parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.flow import Flow
from ductwork.core.params import (
    ChoiceParameter,
    FloatParameter,
    IntParameter,
    ListParameter,
    Parameter,
)
from ductwork.declarative.datapipeline import catalog as cat
from ductwork.declarative.datapipeline import copyoptions
from ductwork.declarative.datapipeline import expressions as ex
from ductwork.declarative.datapipeline.copyoptions import CopyOptions
from ductwork.declarative.datapipeline.jodatime import parse_datetime
from ductwork.declarative.datapipeline.model import DEFAULT_ID, Definition, ParameterObject, PipelineObject, Ref
from ductwork.declarative.datapipeline.periods import Period, parse_period, schedule_text
from ductwork.declarative.datapipeline.plan import PipelineInfo, Policy, kind_of, refs, type_spec
from ductwork.declarative.datapipeline.scope import Scope, placeholder_runtime
from ductwork.declarative.problems import PipelineDefinitionError, Problem
from ductwork.errors import did_you_mean

COMPILE_TIME = {
    "period",
    "startAt",
    "startDateTime",
    "endDateTime",
    "occurrences",
    "scheduleType",
    "maximumRetries",
    "retryDelay",
    "attemptTimeout",
    "lateAfterTimeout",
    "preconditionTimeout",
    "workerGroup",
    "failureAndRerunMode",
    "stage",
    "maxActiveInstances",
    "compression",
    "insertMode",
    "commandOptions",
    "reportProgressTimeout",
    "s3EncryptionType",
}
"""Fields read when the pipeline is compiled (they shape the graph or its policy), so they may
use parameters but not the run's times."""


class _Checker:
    """Collects problems while reading a definition."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.problems: list[Problem] = list(definition.problems)
        # A field whose value could not be read was left out: it is one problem, not also
        # "needs 'command'" or the like.
        self._unreadable = {(p.object_id, p.field) for p in definition.problems if p.object_id is not None}
        self.refused_values: set[str] = set()
        """Parameters whose value was refused (said once, as the parameter's problem)."""

    def add(
        self, message: str, obj: PipelineObject | str | None = None, name: str | None = None, pos: int | None = None
    ) -> None:
        if isinstance(obj, PipelineObject):
            if name is not None:
                obj = self.definition.field_origin(obj, name)
            problem = Problem(message, obj.id, name, pos, obj.line)
        else:
            line = self.definition.objects[obj].line if obj in self.definition.objects else None
            problem = Problem(message, obj, name, pos, line)
        if (problem.object_id, name) in self._unreadable:
            return
        if problem not in self.problems:  # a Default field inherited by many objects is one problem
            self.problems.append(problem)

    def add_parameter(self, message: str, param: ParameterObject | str, name: str) -> None:
        """A problem of a parameter (or of a value given for one), named as a parameter."""
        if isinstance(param, ParameterObject):
            self.problems.append(Problem(message, param.name, name, line=param.line, kind="parameter"))
        else:
            self.problems.append(Problem(message, param, name, kind="parameter"))


# --- structure ----------------------------------------------------------------------------------


def _check_structure(check: _Checker) -> None:
    definition = check.definition
    for obj in definition:
        if definition.is_base(obj):
            _check_default_fields(check, obj)
            _check_parent(check, obj)
            continue
        if obj.type is None:
            if "type" in obj.fields:  # a list or a reference
                written = obj.fields["type"]
                shown = f"a reference to {written.target!r}" if isinstance(written, Ref) else f"the list {written!r}"
                check.add(f"type must be one type name, such as 'ShellCommandActivity', not {shown}", obj, "type")
            else:
                check.add(
                    "every object needs a 'type' (the Default object, and an object used only as a parent, excepted)",
                    obj,
                    "type",
                )
            continue
        if obj.type in cat.REFUSED:
            check.add(f"type {obj.type!r} is not supported: {cat.REFUSED[obj.type]}", obj, "type")
            continue
        spec = cat.TYPES.get(obj.type)
        if spec is None:
            known = [*cat.TYPES, *cat.REFUSED]
            check.add(f"unknown type {obj.type!r}.{did_you_mean(obj.type, known)}", obj, "type")
            continue
        _check_parent(check, obj)
        if spec.open:
            continue
        for name in obj.fields:
            _check_field_name(check, obj, name, spec)
        effective = definition.effective(obj)
        for name, value in effective.items():
            field_spec = spec.fields.get(name)
            if field_spec is not None:
                _check_slot(check, obj, name, value, field_spec)
            elif cat.is_user_field(name):
                _check_user_field(check, obj, name, value)
        for group in spec.required:
            if not any(name in effective for name in group):
                wanted = " or ".join(repr(n) for n in group)
                check.add(f"{obj.type} needs {wanted}", obj, group[0])


def _check_default_fields(check: _Checker, obj: PipelineObject) -> None:
    for name, value in obj.fields.items():
        if name in cat.NOT_INHERITED:
            continue
        if cat.is_runtime_field(name):
            check.add("a runtime field is set by the service; it cannot be written in a definition", obj, name)
        elif cat.is_user_field(name):
            _check_user_field(check, obj, name, value)
        elif name in cat.ALL_FIELDS:
            _check_slot(check, obj, name, value, cat.ALL_FIELDS[name])
        elif name not in cat.DEFAULT_ONLY:
            check.add(f"unknown field {name!r}.{did_you_mean(name, cat.ALL_FIELDS)}", obj, name)


def _check_field_name(check: _Checker, obj: PipelineObject, name: str, spec: cat.TypeSpec) -> None:
    if name in cat.NOT_INHERITED or name in spec.fields or cat.is_user_field(name):
        return
    if cat.is_runtime_field(name):
        check.add("a runtime field is set by the service; it cannot be written in a definition", obj, name)
        return
    hint = did_you_mean(name, spec.fields)
    if not hint and name in cat.ALL_FIELDS:
        hint = f" ({name!r} is a field of other types, not of {obj.type})"
    check.add(f"unknown field {name!r} for {obj.type}.{hint}", obj, name)


def _check_parent(check: _Checker, obj: PipelineObject) -> None:
    parent = obj.fields.get("parent")
    if parent is None:
        return
    if not isinstance(parent, Ref):
        check.add('parent must be a reference {"ref": "ObjectId"}', obj, "parent")
        return
    if parent.target not in check.definition.objects:
        check.add(_missing_ref(check.definition, parent.target), obj, "parent")
        return
    seen = [obj.id]
    current: str | None = parent.target
    while current is not None:
        if current in seen:
            check.add(f"parent cycle: {' -> '.join([*seen, current])}", obj, "parent")
            return
        seen.append(current)
        target = check.definition.objects.get(current)
        nxt = target.fields.get("parent") if target is not None else None
        current = nxt.target if isinstance(nxt, Ref) else None


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _missing_ref(definition: Definition, target: str) -> str:
    return f"reference to a missing object {target!r}.{did_you_mean(target, definition.objects)}"


def _check_user_field(check: _Checker, obj: PipelineObject, name: str, value: Any) -> None:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, Ref) and item.target not in check.definition.objects:
            check.add(_missing_ref(check.definition, item.target), obj, name)


def _check_slot(check: _Checker, obj: PipelineObject, name: str, value: Any, spec: cat.FieldSpec) -> None:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not spec.multi and len(value) != 1:
        check.add(f"takes a single value, got a list of {len(value)}", obj, name)
        return
    for item in items:
        if spec.slot == cat.REF:
            if not isinstance(item, Ref):
                check.add(f'wants a reference {{"ref": "ObjectId"}}, got the text {item!r}', obj, name)
                continue
            target = check.definition.objects.get(item.target)
            if target is None:
                check.add(_missing_ref(check.definition, item.target), obj, name)
                continue
            kind = kind_of(target)
            if spec.targets and target.type is None:  # the Default object, or one without a type
                wanted = " or ".join(_a(t) for t in spec.targets)
                check.add(f"refers to {item.target!r}, which has no type; it wants {wanted}", obj, name)
                continue
            if spec.targets and kind is not None and kind not in spec.targets:
                wanted = " or ".join(_a(t) for t in spec.targets)
                check.add(f"refers to {item.target!r}, {_a(kind)} ({target.type}); it wants {wanted}", obj, name)
        elif isinstance(item, Ref):
            check.add(f"wants a {spec.slot}, got a reference to {item.target!r}", obj, name)


# --- reading values -----------------------------------------------------------------------------


def _compile_value(check: _Checker, scope: Scope, obj: PipelineObject, name: str) -> Any:
    """A compile-time field evaluated (parameters allowed), or None; errors become problems."""
    try:
        return scope.text(obj, name)
    except ex.ExpressionError as exc:
        check.add(exc.message, obj, name, exc.position)
        return None


def _typed(check: _Checker, scope: Scope, obj: PipelineObject, name: str, slot: str) -> Any:
    text = _compile_value(check, scope, obj, name)
    if text is None:
        return None
    try:
        return convert(text, slot, cat.ALL_FIELDS.get(name))
    except ValueError as exc:
        check.add(str(exc), obj, name)
        return None


def convert(text: str, slot: str, spec: cat.FieldSpec | None = None) -> Any:
    """A field's text as its slot type; ``ValueError`` says what was wanted."""
    if slot == cat.INTEGER:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"wants an Integer, got {text!r}") from None
    if slot == cat.DOUBLE:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"wants a Double, got {text!r}") from None
    if slot == cat.BOOLEAN:
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise ValueError(f"wants a Boolean (true or false), got {text!r}")
        return word == "true"
    if slot == cat.PERIOD:
        return parse_period(text)
    if slot == cat.DATETIME:
        try:
            return parse_datetime(text)
        except ValueError:
            called = _date_call(text)
            if called is not None:
                return called
            raise ValueError(f"wants a DateTime like 2012-01-15T23:59:00 (UTC), got {text!r}") from None
    if slot == cat.ENUM and spec is not None:
        word = text.strip().lower()
        choices = [c.lower() for c in spec.choices]
        if word not in choices:
            raise ValueError(f"wants one of {', '.join(spec.choices)}, got {text!r}")
        return word
    return text


_BARE_CALL = re.compile(r"^\s*[A-Za-z]\w*\s*\(.*\)\s*$", re.DOTALL)


def _date_call(text: str) -> dt.datetime | None:
    """A DateTime field given as a bare function call, ``"startDateTime": "makeDate(2011,5,24)"``,
    as AWS's "Expression Evaluation" shows it: its value, None when it is not a call (or not of
    a DateTime); ``ValueError`` names what is wrong with a call."""
    if _BARE_CALL.match(text) is None:
        return None

    def no_references(path: tuple[str, ...], pos: int) -> Any:
        raise ex.ExpressionError(f"{'.'.join(path)!r}: a bare call takes no references; write #{{...}}", pos)

    try:
        template = ex.parse_template("#{" + text.strip() + "}")
        value = ex.evaluate(template.expressions[0], no_references)
    except ex.ExpressionError as exc:
        raise ValueError(
            f"wants a DateTime like 2012-01-15T23:59:00 (UTC) or makeDate(2012,1,15), {exc.message}"
        ) from None
    return value if isinstance(value, dt.datetime) else None


# --- parameters ---------------------------------------------------------------------------------

_PARAM_TYPES: dict[str, type[Parameter[Any]]] = {
    "string": Parameter,
    "integer": IntParameter,
    "double": FloatParameter,
    "aws::s3::objectkey": Parameter,
}


def _parameters(check: _Checker) -> dict[str, Parameter[Any]]:
    out: dict[str, Parameter[Any]] = {}
    for param in check.definition.parameters.values():
        attrs = param.attributes
        where = param
        if not cat.is_user_field(param.name):
            check.add_parameter(
                "a parameter id must start with 'my' and a capital letter or '_' (e.g. myBucket)", where, "id"
            )
        type_name = str(attrs.get("type", "String"))
        factory = _PARAM_TYPES.get(type_name.lower())
        if factory is None:
            check.add_parameter(
                f"unknown parameter type {type_name!r}; use String, Integer, Double or AWS::S3::ObjectKey",
                where,
                "type",
            )
            continue
        inner: Parameter[Any] = factory(description=str(attrs.get("description", "")))
        allowed = attrs.get("allowedValues")
        is_array = str(attrs.get("isArray", "false")).lower() == "true"
        optional = str(attrs.get("optional", "false")).lower() == "true"
        default: Any = check.definition.values.get(param.name, attrs.get("default"))
        items = default if isinstance(default, list) else [default]
        if any(isinstance(item, dict | list) for item in items):
            field_name = "values" if param.name in check.definition.values else "default"
            check.add_parameter(f"a value is text or a list of texts, not {default!r}", where, field_name)
            inner.name = param.name
            out[param.name] = inner  # without a value: the fields that use it are still checked
            check.refused_values.add(param.name)
            continue
        try:
            if allowed is not None:
                choices = [inner.parse(str(c)) for c in (allowed if isinstance(allowed, list) else [allowed])]
                inner = ChoiceParameter(choices, var_type=inner, description=inner.description)
            # An array's items are typed as the parameter is (and held to its allowedValues):
            # an untyped list let ``--param 'myDays=["x"]'`` of an Integer array run unchecked.
            item_type = None if type(inner) is Parameter else inner
            built: Parameter[Any] = ListParameter(items=item_type, description=inner.description) if is_array else inner
            if default is not None:
                if is_array:
                    items = default if isinstance(default, list) else [default]
                    built.default = tuple(inner.parse(str(i)) for i in items)
                else:
                    built.default = built.parse(str(default))
            elif optional:
                built.default = None
        except (ValueError, TypeError) as exc:
            field_name = "values" if param.name in check.definition.values else "default"
            check.add_parameter(
                f"value {default!r} does not fit the parameter's type {type_name}: {exc}", where, field_name
            )
            # Kept without a value, so that the fields using it are checked, not each said to
            # lack a value for it: the value is the one problem.
            fallback: Parameter[Any] = factory(description=inner.description)
            fallback.name = param.name
            out[param.name] = fallback
            check.refused_values.add(param.name)
            continue
        built.name = param.name
        out[param.name] = built
    for name in check.definition.values:
        if name not in check.definition.parameters:
            hint = did_you_mean(name, check.definition.parameters)
            check.add_parameter(f"a value is given for {name!r}, which is not a parameter.{hint}", name, "values")
    return out


# --- compilation --------------------------------------------------------------------------------


@dataclass
class _Schedule:
    text: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    catchup: bool = True
    schedule_type: str = "cron"
    period: Period | None = None
    schedule_id: str | None = None


def _schedule(
    check: _Checker, scope: Scope, runnables: list[PipelineObject], activation: dt.datetime | None
) -> _Schedule:
    definition = check.definition
    types = set()
    schedules: dict[str, list[str]] = {}
    for obj in runnables:
        kind = _typed(check, scope, obj, "scheduleType", cat.ENUM) or "cron"
        types.add(kind)
        ref = definition.effective(obj).get("schedule")
        if isinstance(ref, Ref) and ref.target in definition.objects:
            schedules.setdefault(ref.target, []).append(obj.id)
        elif kind != "ondemand":
            check.add("needs a schedule (or scheduleType 'ondemand' on the Default object)", obj, "schedule")
    if len(types) > 1:
        check.add(
            f"objects use different scheduleType values ({', '.join(sorted(types))}); use one, on the Default object",
            DEFAULT_ID if definition.default else runnables[0].id,
            "scheduleType",
        )
    schedule_type = next(iter(types)) if len(types) == 1 else "cron"
    if schedule_type == "ondemand":
        for sched_id, users in schedules.items():
            check.add(f"an ondemand pipeline takes no schedule (used by {', '.join(users)})", sched_id, "type")
        return _Schedule(schedule_type="ondemand", catchup=False)
    if len(schedules) > 1:
        detail = "; ".join(f"{sid} by {', '.join(users)}" for sid, users in schedules.items())
        # Said where a schedule is referred to, by an object of the least used one (the odd one
        # out): it was said of the Schedule object itself, "field 'schedule'", which it has not.
        users = min(schedules.values(), key=len)
        user = definition.objects[users[0]]
        check.add(
            f"Ductwork runs a pipeline on one schedule, and this one uses {len(schedules)} ({detail})",
            user,
            "schedule",
        )
        return _Schedule(schedule_type=schedule_type)
    if not schedules:
        return _Schedule(schedule_type=schedule_type, catchup=False)
    sched_id = next(iter(schedules))
    sched = definition.objects[sched_id]
    period = _typed(check, scope, sched, "period", cat.PERIOD)
    start = _typed(check, scope, sched, "startDateTime", cat.DATETIME)
    start_at = _typed(check, scope, sched, "startAt", cat.ENUM)
    end = _typed(check, scope, sched, "endDateTime", cat.DATETIME)
    occurrences = _typed(check, scope, sched, "occurrences", cat.INTEGER)
    result = _Schedule(schedule_type=schedule_type, period=period, schedule_id=sched_id)
    if start is not None and start_at is not None:
        check.add("give startDateTime or startAt, not both", sched, "startAt")
    if start_at is not None:
        start = activation
        result.catchup = activation is not None
    if occurrences is not None and occurrences <= 0:
        check.add("occurrences must be a positive number", sched, "occurrences")
        occurrences = None
    if occurrences is not None and end is not None:
        check.add("give occurrences or endDateTime, not both (AWS refuses the two together)", sched, "occurrences")
    if period is None:
        return result
    # A cron-style instance starts at the beginning of its period: the Ductwork run that is due
    # at ``start`` is the one whose interval ends there (see PipelineInfo).
    start_run = _back(period, start) if schedule_type == "cron" and start is not None else start
    try:
        result.text = schedule_text(period, start_run)
    except ValueError as exc:
        check.add(str(exc), sched, "period")
        return result
    result.start = start_run
    if occurrences is not None:
        if start_run is None and start_at is None:
            pass  # the startDateTime is wrong, and said so
        elif start_run is None:
            check.add(
                "occurrences with startAt FIRST_ACTIVATION_DATE_TIME needs the pipeline to be activated "
                "(ductwork pipelines activate) or a startDateTime",
                sched,
                "occurrences",
            )
        else:
            result.end = period.add(start_run, occurrences - 1)
    elif end is not None:
        # AWS's endDateTime ends the schedule: the last instance is the last period that starts
        # before it (hourly to 2012-10-01T00:00 ends with the 2012-09-30T23:00 instance).
        last = _last_start_before(period, start, end)
        result.end = _back(period, last) if schedule_type == "cron" and last is not None else last
    if end is not None and start is not None and end <= start:
        check.add("endDateTime must be after the start: no instance would start before it", sched, "endDateTime")
    return result


def _back(period: Period, when: dt.datetime) -> dt.datetime:
    return period.add(when, -1)


def _last_start_before(period: Period, first: dt.datetime | None, end: dt.datetime) -> dt.datetime | None:
    """The scheduled start of the last instance before ``end`` (instances start at ``first`` and
    every ``period`` after it); without ``first`` (a start at activation, not activated yet), the
    latest moment before ``end``. None when no instance starts before ``end``."""
    if first is None:
        return end - dt.timedelta(microseconds=1)
    if end <= first:
        return None
    if period.fixed:
        step = dt.timedelta(seconds=period.seconds())
        return first + step * ((end - first - dt.timedelta(microseconds=1)) // step)
    count = 0
    while period.add(first, count + 1) < end:
        count += 1
    return period.add(first, count)


def _policy(check: _Checker, scope: Scope, obj: PipelineObject) -> Policy:
    policy = Policy()
    retries = _typed(check, scope, obj, "maximumRetries", cat.INTEGER)
    if retries is not None:
        if retries < 0:
            check.add("maximumRetries cannot be negative", obj, "maximumRetries")
        else:
            policy.retries = retries
            policy.max_checks = retries + 1
    delay = _typed(check, scope, obj, "retryDelay", cat.PERIOD)
    if delay is not None:
        policy.retry_delay = _seconds(check, obj, "retryDelay", delay)
    timeout = _typed(check, scope, obj, "attemptTimeout", cat.PERIOD)
    if timeout is not None:
        policy.timeout = _seconds(check, obj, "attemptTimeout", timeout)
    late = _typed(check, scope, obj, "lateAfterTimeout", cat.PERIOD)
    if late is not None:
        policy.late_after = _seconds(check, obj, "lateAfterTimeout", late)
    group = _compile_value(check, scope, obj, "workerGroup")
    if group and "runsOn" not in check.definition.effective(obj):
        # AWS: "If you provide a runsOn value and workerGroup exists, workerGroup is ignored"
        # (the object runs on that resource); ``_without_effect`` says so to the user.
        policy.queue = group
    mode = _typed(check, scope, obj, "failureAndRerunMode", cat.ENUM)
    policy.cascade = mode == "cascade"
    # Read here, with parameters evaluated and the value checked, so that "stage": "yes" or
    # "compression": "zip" is an error naming the field rather than a silent default.
    if obj.type == "ShellCommandActivity":
        policy.stage = bool(_typed(check, scope, obj, "stage", cat.BOOLEAN))
    if obj.type == "RedshiftCopyActivity":
        policy.insert_mode = str(_typed(check, scope, obj, "insertMode", cat.ENUM) or "append").upper()
        policy.copy_options = _command_options(check, scope, obj)
    if obj.type == "S3DataNode":
        _typed(check, scope, obj, "compression", cat.ENUM)
    if kind_of(obj) == cat.PRECONDITION:
        wait = _typed(check, scope, obj, "preconditionTimeout", cat.PERIOD)
        if wait is not None:
            policy.precondition_timeout = _seconds(check, obj, "preconditionTimeout", wait)
        policy.retries = 0  # a precondition's retries are its checks (max_checks)
    return policy


def _command_options(check: _Checker, scope: Scope, obj: PipelineObject) -> CopyOptions | None:
    """A RedshiftCopyActivity's ``commandOptions``, read as ``COPY`` reads them; an option
    Ductwork cannot honour is a problem naming it (it decides how the input is read, so running
    without it would load other rows than AWS did)."""
    try:
        items = scope.texts(obj, "commandOptions")
    except ex.ExpressionError as exc:
        check.add(exc.message, obj, "commandOptions", exc.position)
        return None
    if not items:
        return None
    try:
        return copyoptions.parse(items)
    except copyoptions.CopyOptionsError as exc:
        for message in exc.messages:
            check.add(message, obj, "commandOptions")
        return None


def _seconds(check: _Checker, obj: PipelineObject, name: str, period: Period) -> float:
    try:
        return period.seconds()
    except ValueError:
        check.add(f"'{period}' has no fixed length; use weeks, days, hours or minutes", obj, name)
        return 0.0


def _check_expressions(
    check: _Checker, scope: Scope, objects: Iterable[PipelineObject], users: Mapping[str, PipelineObject]
) -> None:
    """Parse every field and evaluate the run-time ones against placeholder run values, so that
    unknown names, bad functions and type errors are found before anything runs.

    A field written once on the Default object (or a parent) is checked in every object that
    inherits it, as each may give it other values; but a problem at the same place is said once,
    where it is written, not once per object (``#{myLogUri}`` missing in Default's
    ``pipelineLogUri`` was four problems in a four-object pipeline). Base objects go first, so
    that the one kept names the object where the field is written."""
    said: set[tuple[str, str, str, int]] = set()
    ordered = sorted(objects, key=lambda o: not check.definition.is_base(o))
    for obj in ordered:
        spec = type_spec(obj)
        effective = check.definition.effective(obj)
        for name, raw in effective.items():
            if name in cat.NOT_INHERITED or name in COMPILE_TIME:
                continue
            field_spec = spec.fields.get(name) if spec else None
            if spec is not None and field_spec is None and not cat.is_user_field(name):
                continue  # inherited from Default, not a field of this type
            texts = [r for r in (raw if isinstance(raw, list) else [raw]) if isinstance(r, str)]
            if not any("#{" in t for t in texts):
                continue
            errors = [
                (text, error)
                for text in texts
                for error in sorted(_expression_errors(scope, obj, name, text, users.get(obj.id)), key=_position)
            ]
            origin = check.definition.field_origin(obj, name).id
            for text, error in errors:
                if (origin, name, text, error.position) not in said:
                    said.add((origin, name, text, error.position))
                    check.add(error.message, obj, name, error.position)
            if errors:
                continue
            try:
                value = scope.value(obj, name, node=users.get(obj.id))
            except ex.ExpressionError as exc:
                check.add(exc.message, obj, name, exc.position)
                continue
            single = field_spec is not None and not field_spec.multi and not isinstance(raw, list)
            if single and isinstance(value, list) and len(value) > 1:
                check.add(
                    "takes a single value, but a list (an isArray parameter) in it gives one text per item; "
                    "use it in a field that takes several values, such as scriptArgument",
                    obj,
                    name,
                )


def _expression_errors(
    scope: Scope, obj: PipelineObject, name: str, text: str, node: PipelineObject | None
) -> list[ex.ExpressionError]:
    """Every error of one text of a field: each expression that does not parse, each unknown
    function or bad call, each reference that does not resolve."""
    parsed, errors = ex.parse_each(text)
    for expr in parsed:
        bad_calls = []
        for part in ex.walk(expr):
            if isinstance(part, ex.Call):
                try:
                    ex.check_call(part)
                except ex.ExpressionError as exc:
                    bad_calls.append(exc)
        errors.extend(bad_calls)
        errors.extend(scope.expression_errors(obj, name, expr, node=node, evaluate=not bad_calls))
    return errors


def _position(error: ex.ExpressionError) -> int:
    return error.position


def _dependency_cycle(check: _Checker, edges: Mapping[str, list[tuple[str, str]]]) -> None:
    """A cycle through dependsOn/input/output, reported on the field that closes it."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        stack: list[tuple[str, Iterator[tuple[str, str]]]] = [(root, iter(edges[root]))]
        path = [root]
        colour[root] = grey
        while stack:
            current, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[current] = black
                stack.pop()
                path.pop()
                continue
            target, via = nxt
            if target not in colour:
                continue
            if colour[target] == grey:
                cycle = [*path[path.index(target) :], target]
                check.add(f"dependency cycle: {' -> '.join(cycle)}", current, via)
                return
            if colour[target] == white:
                colour[target] = grey
                path.append(target)
                stack.append((target, iter(edges[target])))


@dataclass
class Compiled:
    """A definition checked and turned into a flow, and what was accepted without effect."""

    flow: Flow
    info: PipelineInfo
    ignored: list[Problem] = field(default_factory=list)


def compile_definition(
    definition: Definition,
    *,
    flow_id: str,
    activation_time: dt.datetime | None = None,
    description: str = "",
    tags: list[str] | None = None,
    paused: bool = False,
) -> Compiled:
    """Validate ``definition`` whole and compile it; raises ``PipelineDefinitionError`` listing
    every problem."""
    from ductwork.declarative.datapipeline import build

    check = _Checker(definition)
    _check_structure(check)
    params = _parameters(check)
    # Go on after structural problems, so that one look lists them all; objects whose type is
    # unknown are left out of the later checks (kind_of is None for them).
    # A parameter whose value was refused is read as a placeholder, so that a compile-time field
    # using it (maximumRetries '#{myRetries}') is not one more problem: "has no value".
    scope = Scope(
        definition,
        {
            k: _placeholder(p) if k in check.refused_values else (p.default if not p.required else None)
            for k, p in params.items()
        },
    )
    runnables = [o for o in definition if kind_of(o) in (cat.ACTIVITY, cat.DATANODE)]
    if not runnables:
        check.add("a pipeline needs at least one activity or data node")
    schedule = _schedule(check, scope, runnables, activation_time) if runnables else _Schedule(catchup=False)
    policies = {
        o.id: _policy(check, scope, o)
        for o in definition
        if kind_of(o) in (cat.ACTIVITY, cat.DATANODE, cat.PRECONDITION)
    }
    edges: dict[str, list[tuple[str, str]]] = {o.id: [] for o in runnables}
    for obj in runnables:
        effective = definition.effective(obj)
        for up in refs(effective.get("dependsOn")):
            edges[obj.id].append((up, "dependsOn"))
        for up in refs(effective.get("input")):
            edges[obj.id].append((up, "input"))
        for down in refs(effective.get("output")):
            if down in edges:
                edges[down].append((obj.id, "output"))
    _dependency_cycle(check, edges)
    users: dict[str, PipelineObject] = {}
    # A precondition's own actions (AWS gives preconditions onFail, onSuccess, onLateAction)
    # act for the precondition: their #{node...} is it, as the built flow has them.
    preconditions = [o for o in definition if kind_of(o) == cat.PRECONDITION]
    for obj in [*runnables, *preconditions]:
        effective = definition.effective(obj)
        for name in ("precondition", "onFail", "onSuccess", "onLateAction"):
            for target in refs(effective.get(name)):
                users.setdefault(target, obj)
    period_end = schedule.period.add(schedule.start) if schedule.period and schedule.start else None
    sample_start = schedule.start or dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    sample = Scope(scope.definition, scope.params, placeholder_runtime(sample_start, period_end or sample_start))
    sample.params = {
        k: (v if v is not None and not isinstance(params[k], ListParameter) else _placeholder(params[k]))
        for k, v in scope.params.items()
    }
    _check_expressions(check, sample, [o for o in definition if kind_of(o) is not None or o.id == DEFAULT_ID], users)
    _check_semantics(check, runnables, policies, schedule)
    max_active = _max_active(check, scope, runnables, schedule)
    if check.problems:
        raise PipelineDefinitionError(definition.source, check.problems)
    info = PipelineInfo(definition, schedule.schedule_type, schedule.period, flow_id)
    flow = build.build_flow(
        info,
        edges=edges,
        policies=policies,
        params=params,
        schedule=schedule.text,
        start=schedule.start,
        end=schedule.end,
        catchup=schedule.catchup,
        description=description,
        max_active_runs=max_active,
        tags=tags or [],
        paused=paused,
        fixed_params=_fixed_params(scope, params),
    )
    return Compiled(flow, info, _ignored(definition) + _without_effect(definition, schedule.schedule_type))


def _fixed_params(scope: Scope, params: Mapping[str, Parameter[Any]]) -> dict[str, list[str]]:
    """The parameters named in compile-time fields, with where: ``object 'Flaky', field
    'maximumRetries'``. Those fields were read with the parameters' compiled values."""
    definition = scope.definition
    fixed: dict[str, list[str]] = {}
    for obj in definition:
        effective = definition.effective(obj)
        for name in sorted(COMPILE_TIME & set(effective)):
            raw = effective[name]
            texts = [r for r in (raw if isinstance(raw, list) else [raw]) if isinstance(r, str) and "#{" in r]
            for index, text in enumerate(texts):
                try:
                    template = scope.template(obj.id, name, index, text)
                except ex.ExpressionError:
                    continue
                for expr in template.expressions:
                    for node in ex.walk(expr):
                        if not isinstance(node, ex.Ref):
                            continue
                        head = node.path[0].lstrip("*")
                        # Where it is written: a Default field is one use, not one per object.
                        use = f"object {definition.field_origin(obj, name).id!r}, field {name!r}"
                        if head in params and node.path[0] not in effective and use not in fixed.get(head, []):
                            fixed.setdefault(head, []).append(use)
    return fixed


def _check_semantics(
    check: _Checker, runnables: list[PipelineObject], policies: Mapping[str, Policy], schedule: _Schedule
) -> None:
    """What the slot types alone do not catch: actions and preconditions used where they cannot
    act, copies between things that are not data nodes, lateness without a deadline."""
    definition = check.definition
    for obj in runnables:
        effective = definition.effective(obj)
        for when in ("onFail", "onSuccess"):
            for target in refs(effective.get(when)):
                action = definition.objects.get(target)
                if action is not None and action.type == "Terminate":
                    check.add("Terminate acts only as an onLateAction (it stops a late object)", obj, when)
        if refs(effective.get("onLateAction")) and policies[obj.id].late_after is None:
            check.add(
                "onLateAction needs lateAfterTimeout (the deadline after the scheduled start)", obj, "onLateAction"
            )
        for pre_id in refs(effective.get("precondition")):
            pre = definition.objects.get(pre_id)
            if pre is not None and pre.type == "Exists" and kind_of(obj) != cat.DATANODE:
                check.add(
                    f"Exists ({pre_id!r}) checks a data node's data; {obj.id!r} is not a data node", obj, "precondition"
                )
        if obj.type == "RedshiftCopyActivity" and "transformSql" in effective:
            check.add(
                "transformSql is not supported yet; run the transformation in a SqlActivity after the copy",
                obj,
                "transformSql",
            )
        if obj.type in ("CopyActivity", "RedshiftCopyActivity"):
            for name in ("input", "output"):
                targets = refs(effective.get(name))
                if not targets and name not in effective:
                    continue  # "CopyActivity needs 'output'" says it; "output names 0" said it twice
                if len(targets) != 1:
                    check.add(
                        f"a CopyActivity copies from one data node to one; {name} names {len(targets)}", obj, name
                    )
                    continue
                node = definition.objects.get(targets[0])
                sql_node = node is not None and node.type in ("SqlDataNode", "MySqlDataNode", "RedshiftDataNode")
                node_fields = definition.effective(node) if node is not None else {}
                if (
                    sql_node
                    and node is not None
                    and not isinstance(node_fields.get("database"), Ref)
                    and (node.type == "RedshiftDataNode" or "connectionString" not in node_fields)
                ):
                    check.add("a SQL data node used by a copy needs a database", node, "database")


def _max_active(check: _Checker, scope: Scope, runnables: list[PipelineObject], schedule: _Schedule) -> int:
    limits: list[int] = []
    for obj in runnables:
        value = _typed(check, scope, obj, "maxActiveInstances", cat.INTEGER)
        if value is not None and value < 1:
            check.add(
                "maxActiveInstances must be 1 or more: with fewer no instance could run", obj, "maxActiveInstances"
            )
        elif value is not None:
            limits.append(value)
    if schedule.schedule_type == "ondemand":
        return min(limits) if limits else 1
    return min(limits) if limits else 16


def _placeholder(param: Parameter[Any]) -> Any:
    if isinstance(param, IntParameter):
        return 1
    if isinstance(param, FloatParameter):
        return 1.0
    if isinstance(param, ListParameter):
        return ["value", "value"]  # two items: a list used where one value is wanted is found
    return "value"


def _ignored(definition: Definition) -> list[Problem]:
    notes: list[Problem] = []
    for obj in definition:
        spec = type_spec(obj)
        if definition.is_base(obj):  # role, resourceRole, pipelineLogUri, region...
            for name in obj.fields:
                field_spec = cat.DEFAULT_ONLY.get(name) or cat.ALL_FIELDS.get(name)
                if field_spec is not None and not field_spec.effective:
                    notes.append(Problem("accepted, has no effect in Ductwork", obj.id, name, line=obj.line))
            continue
        if spec is None or spec.open:
            if spec is not None:
                notes.append(
                    Problem(
                        f"{obj.type} objects are accepted; tasks run on Ductwork's workers", obj.id, None, line=obj.line
                    )
                )
            continue
        for name in obj.fields:
            field_spec = spec.fields.get(name)
            if field_spec is not None and not field_spec.effective:
                notes.append(Problem("accepted, has no effect in Ductwork", obj.id, name, line=obj.line))
    return notes


def _without_effect(definition: Definition, schedule_type: str) -> list[Problem]:
    """Fields that are valid but do nothing in this pipeline, as AWS documents them: a
    ``lateAfterTimeout`` on an ondemand pipeline ("triggered only when the schedule type is not
    set to ondemand": there is no scheduled start to be late against), and a ``workerGroup`` on
    an object that also has ``runsOn`` ("if you provide a runsOn value and workerGroup exists,
    workerGroup is ignored"). Said where the field is written, once."""
    notes: list[Problem] = []
    for obj in definition:
        if kind_of(obj) not in (cat.ACTIVITY, cat.DATANODE, cat.PRECONDITION):
            continue
        effective = definition.effective(obj)
        if schedule_type == "ondemand" and "lateAfterTimeout" in effective:
            origin = definition.field_origin(obj, "lateAfterTimeout")
            notes.append(
                Problem(
                    "has no effect on an ondemand pipeline: as in AWS, an object is late (and its "
                    "onLateAction acts) only after a scheduled start",
                    origin.id,
                    "lateAfterTimeout",
                    line=origin.line,
                )
            )
        if obj.type == "RedshiftCopyActivity" and effective.get("commandOptions"):
            formatted = [
                node
                for name in ("input", "output")
                for node in refs(effective.get(name))
                if node in definition.objects and definition.effective(definition.objects[node]).get("dataFormat")
            ]
            if formatted:
                notes.append(
                    Problem(
                        f"ignored because {formatted[0]!r} has a dataFormat, as in AWS: the data format "
                        "says how the data is read",
                        obj.id,
                        "commandOptions",
                        line=obj.line,
                    )
                )
        if "workerGroup" in effective and "runsOn" in effective:
            notes.append(
                Problem(
                    "ignored because the object has runsOn, as in AWS: its tasks go to the default queue",
                    obj.id,
                    "workerGroup",
                    line=obj.line,
                )
            )
    unique: list[Problem] = []
    for note in notes:
        if note not in unique:
            unique.append(note)
    return unique
