"""100,000 tasks under the scheduler, and what the web UI asks for about such a run (issue 15).

    python benchmarks/run.py --sections big                # SQLite chain and fan-out, PostgreSQL fan-out
    python benchmarks/run.py --sections big --sizes 10000  # the same at 10,000 (for development)

Each measurement is ``engine.measure`` (a real ``ductwork scheduler`` with two workers, a warm-up
run and a measured run of a flow of N no-op tasks; scheduler peak RSS; the database read back:
N successful tries, each with start and end). Once the scheduler has stopped, the real
application is served over HTTP (uvicorn, as in ``benchmarks/web.py``) on the same database and
the endpoints the grid and graph pages call are timed against the measured run.

A few minutes per 100,000-task measurement on a quiet 2-core machine, so this section runs only
when asked for.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

ENGINE_ROWS: tuple[tuple[str, str], ...] = (("sqlite", "chain"), ("sqlite", "fan"), ("postgres", "fan"))
"""(backend, shape) measured by the section; a PostgreSQL chain adds little over its fan-out."""

REPEAT = 5
"""API calls timed per endpoint (after one warm-up call)."""


def time_api(engine: Any, flow_id: str, run_id: str) -> dict[str, Any]:
    """Median and worst time and body size of the grid, graph, states and Gantt calls for one run
    of ``flow_id`` (the grid shows the flow's latest runs: here the warm-up and the measured run)."""
    import httpx

    from ductwork.services import accounts
    from web import serve, time_call  # benchmarks/web.py

    accounts.create_user(engine, "bench", "benchmark-password", "viewer")
    token = accounts.issue_token(engine, "bench", "benchmark").token
    run = f"/api/v1/flows/{quote(flow_id)}/runs/{quote(run_id)}"
    calls = {
        "grid": f"/api/v1/flows/{quote(flow_id)}/grid?limit=25",
        "run graph": f"{run}/graph",
        "flow graph": f"/api/v1/flows/{quote(flow_id)}/graph",
        "run states": f"{run}/states",
        "gantt": f"{run}/gantt",
    }
    api: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ductwork-big-web-") as home, serve(engine, Path(home)) as base:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for name, path in calls.items():
                api[name] = time_call(client, path, REPEAT)
    return {"api": api}


def measure(backend: str, shape: str, n: int) -> dict[str, Any]:
    import engine  # benchmarks/engine.py

    return engine.measure(backend, shape, n, inspect=time_api)


def print_api_rows(rows: list[tuple[str, str, int, dict[str, tuple[float, float, int]]]]) -> None:
    """The API timings of every measurement, as one table after the engine rows."""
    print(f"\n# REST API on the measured run (real server over HTTP; median of {REPEAT} calls after a warm-up)")
    print("| backend  | shape  | N      | endpoint    | median ms | max ms  | body KiB |")
    print("|----------|--------|--------|-------------|-----------|---------|----------|")
    for backend, shape, n, api in rows:
        for name, (median, worst, size) in api.items():
            print(
                f"| {backend:<8} | {shape:<6} | {n:>6} | {name:<11} | {median:>9.0f} | {worst:>7.0f} | "
                f"{size / 1024:>8.0f} |"
            )
