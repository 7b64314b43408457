"""A scheduler started on a folder of flow files parses them in batches (one child process
imports many files), and a file that hangs in a batch neither hides the others nor escapes
being reported: it becomes an import error, the files after it are parsed alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo

GOOD = """
from ductwork import EmptyOperator, Flow

with Flow("listed_{i}") as flow:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


def test_a_folder_of_files_is_listed_and_a_hanging_file_is_an_import_error(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for i in range(12):
        (flows / f"f{i:02d}.py").write_text(GOOD.format(i=i))
    (flows / "f03_hangs.py").write_text("import time\ntime.sleep(600)\n")  # early in its batch
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=1)
    options = SchedulerOptions(parse_timeout=4, parse_slow_after=1, schedule=False)
    service = SchedulerService(settings, options=options)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(engine) as conn:
                listed = {f.flow_id for f in flow_repo.list_flows(conn)}
                errors = error_repo.list_import_errors(conn)
            if len(listed) == 12 and errors:
                break
            assert time.monotonic() < deadline, (sorted(listed), errors)
            time.sleep(0.1)
    finally:
        service.stop()
        thread.join(timeout=60)
        engine.dispose()
    assert listed == {f"listed_{i}" for i in range(12)}
    (error,) = errors
    assert error.fileloc.endswith("f03_hangs.py") and "longer than 4s" in error.error
