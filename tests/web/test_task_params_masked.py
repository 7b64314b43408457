"""A task's parameters on its page (``GET .../tasks/{task_id}``, which the web UI's task page
shows to every viewer) leave out the values a Luigi module keeps secret: a parameter declared
``visibility=PRIVATE`` or ``HIDDEN`` (Luigi keeps them off its scheduler and visualiser) and one
named like a secret (``db_password``), as a run's params are shown. The API showed them in full."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import luigi
from sqlalchemy.engine import Engine

from tests.web.conftest import Api

Visibility = luigi.parameter.ParameterVisibility


class Extract(luigi.Task):
    day = luigi.DateParameter()
    db_password = luigi.Parameter(significant=False)
    dsn = luigi.Parameter(visibility=Visibility.PRIVATE)
    bucket = luigi.Parameter(visibility=Visibility.HIDDEN)
    region = luigi.Parameter(default="eu")
    note = luigi.Parameter(default="", visibility=Visibility.PRIVATE)


def test_a_luigi_tasks_private_and_secret_parameters_are_shown_masked(engine: Engine, viewer: Api) -> None:
    from ductwork.core.class_flow import compile_tasks
    from ductwork.core.graph import FlowGraph
    from ductwork.core.states import RunState
    from ductwork.store.engine import transaction
    from ductwork.store.repo import runs as run_repo
    from tests.web.seed import demo_flow

    task = Extract(day=dt.date(2024, 2, 1), db_password="pw-8Kd2", dsn="pg://u:p@db/x", bucket="s3://b-4Tz")
    nodes, _ = compile_tasks([task], prune_complete=False)
    graph = FlowGraph(demo_flow().meta(), nodes)
    with transaction(engine) as conn:
        run_repo.create_run(
            conn,
            graph,
            run_id="api__task_secrets",
            logical_date=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
            params={},
            state=RunState.QUEUED,
        )
    response = viewer.get(f"/flows/demo/runs/{quote('api__task_secrets', safe='')}/tasks/{task.task_id}")
    assert response.status_code == 200, response.text
    assert response.json()["definition"]["params"] == {
        "day": "2024-02-01",
        "db_password": "***",
        "dsn": "***",
        "bucket": "***",
        "region": "eu",
        "note": "",  # nothing to hide: an empty value stays empty, as a run's conf shows it
    }
    for secret in ("pw-8Kd2", "pg://u:p@db/x", "s3://b-4Tz"):
        assert secret not in response.text
