"""What an Airflow user writes in a native flow works as in a DAG: ``dag_run`` in the context and
templates, and the timezone taken from an aware start date."""

from __future__ import annotations

import datetime as dt

import pendulum

from ductwork import BashOperator, Flow, PythonOperator, task
from ductwork.core.schedule import get_timezone, timezone_name
from ductwork.testing import run_flow


def test_dag_run_conf_reaches_templates_and_callables_of_a_native_flow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The README's `ductwork run etl --conf ...` gives "dag_run.conf"; a native flow's template
    # failed with "'dag_run' is undefined" and a callable declaring dag_run got a TypeError.
    out = tmp_path / "who.txt"

    def read(dag_run):  # type: ignore[no-untyped-def]
        return [dag_run.conf["who"], dag_run.run_id, dag_run.flow_id]

    @task
    def decorated(dag_run=None):  # type: ignore[no-untyped-def]
        return dag_run.conf.get("who")

    with Flow("ctx_dag_run") as f:
        BashOperator(task_id="tpl", bash_command=f"echo {{{{ dag_run.conf.who }}}} > {out}")
        PythonOperator(task_id="call", python_callable=read)
        decorated()
    result = run_flow(f, conf={"who": "me"})
    assert result.state == "success", [(t, s.tries[-1].error) for t, s in result.tasks.items() if s.tries]
    assert out.read_text().strip() == "me"
    who, run_id, flow_id = result.result("call")
    assert (who, flow_id) == ("me", "ctx_dag_run") and run_id == result.run_id
    assert result.result("decorated") == "me"


def test_a_native_flow_takes_its_timezone_from_an_aware_start_date() -> None:
    # As Airflow's DAG does: an @daily flow starting at Madrid's midnight ran at UTC midnight.
    madrid = Flow("tz_madrid", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Madrid"))
    assert madrid.meta().timezone == "Europe/Madrid"
    assert madrid.start_date == dt.datetime(2023, 12, 31, 23, tzinfo=dt.UTC)
    naive = Flow("tz_naive", schedule="@daily", start_date=dt.datetime(2024, 1, 1))
    assert naive.meta().timezone == "UTC"
    given = Flow(
        "tz_given",
        schedule="@daily",
        start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Madrid"),
        timezone="Asia/Tokyo",
    )
    assert given.meta().timezone == "Asia/Tokyo"


def test_a_fixed_offset_zone_is_recorded_as_a_name_read_back() -> None:
    # Flow(timezone=dt.timezone(dt.timedelta(hours=1))) recorded "UTC+01:00", which trigger and
    # backfill then refused as an unknown timezone; pendulum's FixedTimezone ("+01:00") was
    # refused at import.
    for zone in (dt.timezone(dt.timedelta(hours=1)), pendulum.FixedTimezone(3600), "+01:00", "UTC+01:00"):
        name = timezone_name(get_timezone(zone))
        assert name == "UTC+01:00"
        assert get_timezone(name).utcoffset(None) == dt.timedelta(hours=1)
    fixed = Flow(
        "tz_fixed", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz=pendulum.FixedTimezone(-5400))
    )
    assert fixed.meta().timezone == "UTC-01:30"
    assert get_timezone(fixed.meta().timezone).utcoffset(None) == dt.timedelta(minutes=-90)
