"""A parent for ``test_parent_death_contract``: it starts a pool of one worker, hands it a slow
try, puts a second try in the worker's pipe behind it (as a scheduler racing its own death
might), and waits to be killed with SIGKILL.

    python pool_parent.py ROOT
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pool_support import JournalRuntime

from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.engine.executor import TryKey, TryRequest
from ductwork.engine.executors import _worker as wire
from ductwork.engine.executors.pool import PoolExecutor


def main(root: Path) -> None:
    flow_file = Path(__file__).parent / "pool_flows" / "operators.py"
    pool = PoolExecutor(
        JournalRuntime(root / "journal.jsonl"), parallelism=1, flow_files={"parent_death": str(flow_file)}
    )
    now = dt.datetime.now(dt.UTC)
    run = RunInfo("parent_death", "r1", now, now, now, params={"root": str(root)})
    pool.submit(TryRequest(TryKey(run.key, "slow", 1), NodeSpec("slow"), run))
    (handle,) = pool._handles
    handle.channel.send((wire.RUN, 999, run.key, "second", 1, NodeSpec("second"), (), None, None, False, None))
    print("submitted", flush=True)
    while True:
        pool.wait(None)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
