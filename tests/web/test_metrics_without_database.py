"""`GET /metrics` while the metadata database does not answer: 200 in Prometheus's text format
with `ductwork_store_up 0` and the process metrics, and `ductwork_store_up 1` when it answers.
It was the 503 HTML error page, so the scrape failed as if the web server were down and no
alert could say that the database was the trouble."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient


def test_metrics_say_the_store_is_down_instead_of_failing(tmp_path: Path) -> None:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    app = create_app(Settings(home=tmp_path / "home"), engine)
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/plain")
    assert "ductwork_store_up 0.0" in response.text
    assert "process_" in response.text or "python_info" in response.text
    assert "ductwork_store_runs" not in response.text


def test_metrics_say_the_store_is_up(client: Any) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "ductwork_store_up 1.0" in response.text
    assert "ductwork_store_runs" in response.text
