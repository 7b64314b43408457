"""``ductwork doctor FILE``: what an Airflow DAG file or a Luigi module uses that Ductwork does
not support, or supports differently, found by reading the file (nothing of it runs).

It reads imports from ``airflow``/``luigi`` (a module or name the shim does not provide is
reported), calls of the imported classes with their keyword arguments, and attribute uses such
as ``@task.virtualenv``, and matches them against ``features.AIRFLOW``/``features.LUIGI``.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

from ductwork.compat.features import AIRFLOW, DIFFERS, LUIGI, UNSUPPORTED, Feature

_FRAMEWORKS = ("airflow", "luigi")


@dataclass(frozen=True, order=True)
class Finding:
    line: int
    status: str
    feature: str
    note: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.status}: {self.feature}: {self.note}"


def _shim_has(module: str, name: str | None = None) -> bool:
    """Whether the shim provides ``module`` (and ``name`` in it), without running user code."""
    from ductwork.compat import activate

    activate()
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    if name is None or name == "*":
        return True
    if hasattr(mod, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
        return True
    except ImportError:
        return False


def _table(module: str) -> dict[str, Feature]:
    return AIRFLOW if module.split(".")[0] == "airflow" else LUIGI


def _match(table: dict[str, Feature], *keys: str) -> Feature | None:
    for key in keys:
        if key in table:
            return table[key]
        for prefix in [key.rsplit(".", n)[0] for n in range(1, key.count(".") + 1)]:
            if prefix in table:  # the closest entry decides: luigi.contrib.external_program, not luigi.contrib
                return table[prefix] if table[prefix].status == UNSUPPORTED else None
    return None


def examine(path: str | Path) -> list[Finding]:
    """The findings for one file, by line."""
    source = Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    findings: set[Finding] = set()
    imported: dict[str, str] = {}  # local name -> dotted origin (airflow.operators.bash.BashOperator)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _FRAMEWORKS:
                    imported[(alias.asname or alias.name).split(".")[0]] = alias.name.split(".")[0]
                    _check_module(alias.name, node.lineno, findings)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _FRAMEWORKS:
            if not _check_module(node.module, node.lineno, findings):
                continue
            for alias in node.names:
                origin = f"{node.module}.{alias.name}"
                imported[alias.asname or alias.name] = origin
                feature = _match(_table(node.module), origin)
                if feature is not None:
                    findings.add(Finding(node.lineno, feature.status, origin, feature.note))
                elif not _shim_has(node.module, alias.name):
                    findings.add(Finding(node.lineno, UNSUPPORTED, origin, "not provided by Ductwork's shim"))
    groups = _task_group_functions(tree, imported)
    _check_variables_at_import(tree, imported, findings)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _check_call(node, imported, findings)
        elif isinstance(node, ast.Attribute):
            _check_attribute(node, imported, findings)
            _check_mapped_group(node, groups, findings)
    return sorted(findings)


def _task_group_functions(tree: ast.AST, imported: dict[str, str]) -> set[str]:
    """Names of the functions decorated with Airflow's ``@task_group``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if (_origin(target, imported) or "").endswith("task_group"):
                    found.add(node.name)
    return found


def _check_mapped_group(node: ast.Attribute, groups: set[str], findings: set[Finding]) -> None:
    """``grp.expand(...)``/``grp.partial(...)``/``grp.expand_kwargs(...)`` on a ``@task_group`` function."""
    mapped = node.attr in ("expand", "expand_kwargs", "partial")
    if mapped and isinstance(node.value, ast.Name) and node.value.id in groups:
        feature = AIRFLOW["task_group.expand"]
        findings.add(Finding(node.lineno, feature.status, f"{node.value.id}.{node.attr}(...)", feature.note))


def _check_module(module: str, line: int, findings: set[Finding]) -> bool:
    feature = _match(_table(module), module)
    if feature is not None:  # a module that runs differently is said too (luigi.contrib.external_program)
        findings.add(Finding(line, feature.status, module, feature.note))
        if feature.status == UNSUPPORTED:
            return False
    if not _shim_has(module):
        findings.add(Finding(line, UNSUPPORTED, module, "module not provided by Ductwork's shim"))
        return False
    return True


def _origin(func: ast.expr, imported: dict[str, str]) -> str | None:
    if isinstance(func, ast.Name):
        return imported.get(func.id)
    if isinstance(func, ast.Attribute):
        base = _origin(func.value, imported)
        return f"{base}.{func.attr}" if base else None
    return None


def _never_catches_up(node: ast.Call) -> bool:
    """A DAG whose schedule is ``None``, ``"@once"`` or datasets (a list, a tuple, ``a | b``,
    ``a & b``): it has no missed intervals, so its ``catchup`` default changes nothing."""
    for keyword in node.keywords:
        if keyword.arg in ("schedule", "schedule_interval"):
            value = keyword.value
            if isinstance(value, ast.Constant):
                return value.value is None or value.value == "@once"
            return isinstance(value, ast.List | ast.Tuple) or (
                isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr | ast.BitAnd)
            )
    return False


def _check_call(node: ast.Call, imported: dict[str, str], findings: set[Finding]) -> None:
    origin = _origin(node.func, imported)
    if origin is None:
        return
    table = _table(origin)
    short = origin.rsplit(".", 1)[-1]
    owner = "DAG" if short in ("DAG", "dag") else ("Task" if table is LUIGI else "BaseOperator")
    for keyword in node.keywords:
        if keyword.arg is None or (owner == "DAG" and keyword.arg == "catchup"):
            continue  # catchup differs only when left to its default (below)
        if owner == "DAG" and keyword.arg == "timetable" and _shimmed_timetable(keyword.value, imported):
            continue
        feature = _match(table, f"{owner}.{keyword.arg}")
        if feature is not None and not _is_false(keyword.value):
            findings.add(Finding(node.lineno, feature.status, f"{short}({keyword.arg}=...)", feature.note))
        if keyword.arg == "default_args" and isinstance(keyword.value, ast.Dict):
            _check_default_args(keyword.value, table, findings)
            for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "executor_config" and isinstance(value, ast.Dict):
                    _check_executor_config(value, "default_args['executor_config']", findings)
        if keyword.arg == "executor_config" and isinstance(keyword.value, ast.Dict) and table is AIRFLOW:
            _check_executor_config(keyword.value, f"{short}(executor_config=...)", findings)
    if owner == "DAG" and not any(k.arg == "catchup" for k in node.keywords) and not _never_catches_up(node):
        feature = AIRFLOW["DAG.catchup"]
        findings.add(Finding(node.lineno, DIFFERS, "DAG(catchup not given)", feature.note))
    if owner == "DAG" and _timedelta_without_catchup(node):
        feature = AIRFLOW["DAG.timedelta_no_catchup"]
        findings.add(Finding(node.lineno, DIFFERS, "DAG(schedule=timedelta(...), catchup=False)", feature.note))


def _shimmed_timetable(value: ast.expr, imported: dict[str, str]) -> bool:
    """Whether ``value`` builds one of Airflow's timetables that the shim runs
    (``CronDataIntervalTimetable(...)``...), rather than a custom one."""
    origin = _origin(value.func, imported) if isinstance(value, ast.Call) else None
    if origin is None or "." not in origin:
        return False
    module, name = origin.rsplit(".", 1)
    if not module.startswith("airflow.timetables") or not _shim_has(module, name):
        return False
    return callable(getattr(getattr(importlib.import_module(module), name, None), "ductwork_schedule", None))


def _timedelta_without_catchup(node: ast.Call) -> bool:
    """A DAG given ``catchup=False`` and a ``timedelta(...)`` (or ``pendulum.duration(...)``)
    schedule: Airflow 2 starts its first interval at the moment the scheduler first looks at it
    less the interval (``DeltaDataIntervalTimetable._skip_to_latest``: ``utcnow() - delta``),
    whatever the start date, so its runs fall at unaligned times (11:44:12.345...) where
    Ductwork's keep the start date's; there is no start date for which the two agree."""
    given = {k.arg: k.value for k in node.keywords if k.arg}
    catchup = given.get("catchup")
    if not (isinstance(catchup, ast.Constant) and catchup.value is False):
        return False
    schedule = given.get("schedule", given.get("schedule_interval"))
    return isinstance(schedule, ast.Call) and _called_name(schedule) in ("timedelta", "duration")


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _check_variables_at_import(tree: ast.Module, imported: dict[str, str], findings: set[Finding]) -> None:
    """``Variable.get(...)`` run when the file is imported (outside any function): its value is
    the one of the worker's import (README's table)."""
    feature = AIRFLOW["Variable.get_at_import"]
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(node, ast.Call) and (_origin(node.func, imported) or "").endswith("Variable.get"):
            findings.add(Finding(node.lineno, feature.status, "Variable.get at import", feature.note))
        todo.extend(ast.iter_child_nodes(node))


def _check_default_args(args: ast.Dict, table: dict[str, Feature], findings: set[Finding]) -> None:
    """``default_args={"wait_for_downstream": True}`` is each task's argument: checked as one (the
    import refused it while doctor said nothing)."""
    for key, value in zip(args.keys, args.values, strict=True):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            feature = _match(table, f"BaseOperator.{key.value}")
            if feature is not None and not _is_false(value):
                findings.add(Finding(key.lineno, feature.status, f"default_args[{key.value!r}]", feature.note))


def _check_executor_config(config: ast.Dict, where: str, findings: set[Finding]) -> None:
    """An ``executor_config`` key the Kubernetes executor does not know (Airflow's
    ``pod_override``, ``{"KubernetesExecutor": {...}}``, a typo): doctor called the whole argument
    "ignored: executor hints", and under ``executor = "kubernetes"`` every try of the task then
    failed at its pod ("executor_config has no key 'pod_override'")."""
    from ductwork.engine.remote.kube import KNOWN_KEYS
    from ductwork.errors import did_you_mean

    for key in config.keys:
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in KNOWN_KEYS:
            note = (
                f'under executor = "kubernetes" each try of the task fails at its pod: executor_config has no '
                f"key {key.value!r}.{did_you_mean(key.value, KNOWN_KEYS)} Its keys: {', '.join(sorted(KNOWN_KEYS))} "
                "(write Airflow's pod_override as a pod_template mapping); the other executors ignore it"
            )
            findings.add(Finding(key.lineno, DIFFERS, f"{where}[{key.value!r}]", note))


def _check_attribute(node: ast.Attribute, imported: dict[str, str], findings: set[Finding]) -> None:
    if imported and f"attr.{node.attr}" in AIRFLOW and any(o.startswith("airflow") for o in imported.values()):
        feature = AIRFLOW[f"attr.{node.attr}"]
        findings.add(Finding(node.lineno, feature.status, f".{node.attr}(...)", feature.note))
    origin = _origin(node.value, imported)
    if origin is not None and origin.endswith("decorators.task"):
        decorator = AIRFLOW.get(f"task.{node.attr}")
        if decorator is not None:
            findings.add(Finding(node.lineno, decorator.status, f"@task.{node.attr}", decorator.note))


def _is_false(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value in (False, None)
