"""A hook written for Airflow 2: ``BaseHook.get_connection`` in a hook subclass, and
``Connection.get_connection_from_secrets`` in a task."""

from __future__ import annotations

import pendulum
from airflow.decorators import dag, task
from airflow.hooks.base import BaseHook
from airflow.models import Connection


class WarehouseHook(BaseHook):
    def __init__(self, warehouse_conn_id: str = "warehouse") -> None:
        super().__init__()
        self.warehouse_conn_id = warehouse_conn_id

    def get_conn(self) -> dict:
        conn = self.get_connection(self.warehouse_conn_id)
        self.log.info("connecting to %s", conn.host)
        return {
            "host": conn.host,
            "port": conn.port,
            "login": conn.login,
            "password": conn.password,
            "schema": conn.schema,
            "region": conn.extra_dejson.get("region"),
        }


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def hook_dag():
    @task
    def through_hook() -> dict:
        return WarehouseHook().get_conn()

    @task
    def through_connection() -> list:
        conn = Connection.get_connection_from_secrets("warehouse")
        return [conn.conn_id, conn.conn_type, conn.get_uri().split("@")[1]]

    @task
    def missing() -> str:
        from airflow.exceptions import AirflowNotFoundException

        try:
            BaseHook.get_connection("nowhere")
        except AirflowNotFoundException as exc:
            return str(exc)
        return "found"

    through_hook()
    through_connection()
    missing()


hook_dag()
