"""Repositories: plain functions over an open connection.

Every function takes the connection first, runs inside the caller's transaction and never
commits (``with transaction(engine) as conn: ...``), and returns frozen records from
``ductwork.store.records``. Writes that can touch many rows are single executemany statements.
Functions that take ``now`` use it for every timestamp they write, so callers with an injected
clock get reproducible rows; without it, the wall clock in UTC is used.
"""

from ductwork.store.repo import flows, import_errors, jobs, pools, results, runs, tasks

__all__ = ["flows", "import_errors", "jobs", "pools", "results", "runs", "tasks"]
