"""``dag.test()``: run every task of a DAG once, in this process, printing as it goes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.events import EngineEvent, StateChanged, TryEnded
from ductwork.core.schedule import as_aware

from ._dag_run import DagRunView, RecordedTaskInstance, SummaryStore, to_pendulum


class _Printer:
    """Prints each try's end and each state the tracker decides (skips, upstream failures)."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def record(self, events: Sequence[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, TryEnded):
                outcome = event.outcome
                line = f"[dag.test] {event.task_id}: {outcome.state.value}"
                if outcome.error:
                    line += f" ({outcome.error})"
                print(line, file=self.out, flush=True)
            elif (
                isinstance(event, StateChanged)
                and event.change.new.value in ("skipped", "upstream_failed")
                and event.change.old.value in ("none", "scheduled")
            ):
                print(f"[dag.test] {event.change.task_id}: {event.change.new.value}", file=self.out, flush=True)


@dataclass
class TestedTaskInstance(RecordedTaskInstance):
    """A task instance of the run ``dag.test()`` ended, whose results are still in memory."""

    summary: Any = field(default=None, repr=False, compare=False)

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", map_indexes: int | None = None) -> Any:
        """The value ``task_ids`` (this task by default; ``map_indexes``: one mapped instance)
        pushed under ``key`` in this run; None when it pushed none (a failed or skipped task)."""
        from ductwork.core.results import MISSING

        task_id = self.task_id if task_ids is None else task_ids
        index = self.map_index if task_ids is None and map_indexes is None else map_indexes
        if index is not None and index >= 0:
            task_id = f"{task_id}[{index}]"
        value = self.summary.results.pull(self.summary.key, task_id, key)
        return None if value is MISSING else value


@dataclass
class TestedDagRun(DagRunView):
    """What ``dag.test()`` returns: the run as Airflow's ``DagRun`` (a test asserts
    ``dr.get_task_instance("load").state``, reads ``dr.conf``...), whose task instances are read
    from the run's summary, as nothing is recorded. The summary's own attributes (``tasks``,
    ``result()``, ``logs``) are still answered, for tests written against it."""

    summary: Any = field(default=None, repr=False, compare=False)

    def get_task_instances(self, state: Any = None, session: Any = None) -> list[RecordedTaskInstance]:
        return [
            TestedTaskInstance(**{f.name: getattr(ti, f.name) for f in dataclasses.fields(ti)}, summary=self.summary)
            for ti in super().get_task_instances(state, session)
        ]

    def __getattr__(self, name: str) -> Any:
        summary = self.__dict__.get("summary")
        if summary is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(summary, name)


def _file_secrets(conn_file_path: str | None, variable_file_path: str | None) -> Any:
    """Airflow's ``LocalFilesystemBackend`` for ``dag.test``: a ``.json``, ``.yaml``/``.yml``
    or ``.env`` file of variables (name to value; a JSON value that is not text is kept as its
    JSON, as ``Variable.get(deserialize_json=True)`` reads it) and one of connections (name to
    a URI, or to the fields of Airflow's JSON form)."""
    import json

    from ductwork.core.connections import MemorySecrets, connection_from_env

    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    variables = {k: text(v) for k, v in _secrets_file(variable_file_path).items()}
    connections = [
        connection_from_env(name, f"{conn_file_path}: {name}", text(value))
        for name, value in _secrets_file(conn_file_path).items()
    ]
    found = MemorySecrets(connections, variables)
    found.label = f"files ({', '.join(p for p in (conn_file_path, variable_file_path) if p)})"
    return found


def _secrets_file(path: str | None) -> dict[str, Any]:
    """The name-to-value mapping of one of Airflow's local secrets files; {} without one."""
    import json
    from pathlib import Path

    from ductwork.errors import DefinitionError

    if not path:
        return {}
    content = Path(path).read_text()
    if path.endswith(".env"):
        pairs = [
            line.split("=", 1) for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if any(len(pair) != 2 for pair in pairs):
            raise DefinitionError(f"{path}: each line of a .env file is NAME=VALUE")
        return {name.strip(): value.strip() for name, value in pairs}
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(content) or {}
    elif path.endswith(".json"):
        data = json.loads(content or "{}")
    else:
        raise DefinitionError(f"{path}: a secrets file of dag.test() ends in .json, .yaml, .yml or .env")
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: the file holds a mapping of names to values")
    return data


def run_dag_test(
    dag: Any,
    logical_date: dt.datetime | None,
    run_conf: Mapping[str, Any] | None,
    *,
    conn_file_path: str | None = None,
    variable_file_path: str | None = None,
) -> TestedDagRun:
    from dataclasses import replace

    from ductwork.core.connections import Secrets
    from ductwork.engine.local import run_locally
    from ductwork.engine.services_setup import local_task_services
    from ductwork.settings import Settings

    # The configured backends, the metadata database's included, as `ductwork run` (and Airflow's
    # dag.test) reads them: a variable saved with `ductwork variables set` was "not defined" here.
    services = local_task_services(Settings.load())
    if conn_file_path or variable_file_path:
        files = _file_secrets(conn_file_path, variable_file_path)
        configured = services.secrets.backends if services.secrets is not None else []
        services = replace(services, secrets=Secrets([files, *configured]))
    conf = dict(run_conf or {})
    params = {k: v for k, v in conf.items() if k in dag.params}
    when = as_aware(logical_date, dag.tz) if logical_date is not None else dt.datetime.now(dt.UTC)
    summary = run_locally(
        dag,
        params=params,
        logical_date=when,
        conf=conf,
        run_type="manual",
        sinks=[_Printer(sys.stdout)],
        services=services,
    )
    for (task_id, try_number), text in sorted(summary.logs.items()):
        if text.strip():
            print(f"--- {task_id}, try {try_number} ---\n{text.rstrip()}", flush=True)
    print(f"[dag.test] run {summary.run_id}: {summary.state.value}", flush=True)
    interval = dag.schedule.interval_starting(when)
    return TestedDagRun(
        dag_id=dag.flow_id,
        run_id=summary.run_id,
        run_type="manual",
        logical_date=to_pendulum(when),
        data_interval_start=to_pendulum(interval.start),
        data_interval_end=to_pendulum(interval.end),
        conf=conf,
        dag=dag,
        external_trigger=True,
        state=summary.state,
        store=SummaryStore(summary, when),
        summary=summary,
    )
