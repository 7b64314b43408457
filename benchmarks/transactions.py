"""What one transaction costs through the store's engine, per database server.

    python benchmarks/transactions.py [--count 3000] [--repeats 5]

Every scheduler step, API request and CLI command talks to the metadata database in
transactions made by ``ductwork.store.engine.transaction`` (pooled connection checked out,
``BEGIN``, the statements, ``COMMIT``, checked in). This times the smallest one (``SELECT 1``)
on each server the machine has, with the engine as Ductwork makes it and with ``pre_ping=False``
(no check of a pooled connection at all): the difference is what the check of a connection
costs per transaction. Median of the repeats; wall and this process's CPU time, microseconds.
SQLite has no connection to check and no server: it is the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import sqlalchemy as sa

from ductwork.store.engine import create_engine, transaction

SERVERS = {
    "postgres": os.environ.get("DUCTWORK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("DUCTWORK_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def per_transaction(engine: sa.Engine, count: int, repeats: int) -> tuple[float, float]:
    """(wall us, CPU us) of one transaction, the median of ``repeats`` loops of ``count``."""

    def loop(n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            with transaction(engine) as conn:
                conn.exec_driver_sql("SELECT 1")
        return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6

    loop(max(1, count // 10))  # connect, warm the pool and the statement caches
    samples = [loop(count) for _ in range(repeats)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| database | engine | wall us per transaction | CPU us per transaction |")
    print("|---|---|---:|---:|")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = create_engine(f"sqlite:///{tmp}/bench.db")
        wall, cpu = per_transaction(sqlite, args.count, args.repeats)
        print(f"| sqlite | as Ductwork makes it | {wall:.1f} | {cpu:.1f} |")
        sqlite.dispose()
    for name, url in SERVERS.items():
        for label, pre_ping in (("as Ductwork makes it", True), ("pre_ping=False", False)):
            engine = create_engine(url, pre_ping=pre_ping)
            try:
                wall, cpu = per_transaction(engine, args.count, args.repeats)
            except sa.exc.OperationalError as exc:
                print(f"| {name} | unreachable: {str(exc).splitlines()[0]} | | |")
                break
            finally:
                engine.dispose()
            print(f"| {name} | {label} | {wall:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
