"""How often the cyclic garbage collector runs in Ductwork's own processes.

CPython walks its youngest generation every 700 net allocations of container objects, and the
whole heap every hundred or so of those walks. A run allocates a few short-lived containers per
task (events, rows, contexts, messages), nearly all freed by reference counting the moment they
are dropped, yet the collector still walks them and, in full collections, every module, flow
graph and connection the process holds: a 5,000-task ``ductwork run`` spent 0.22 s of its 1.7 s
collecting, a scheduler 10% of its CPU (``benchmarks/RESULTS.md``, "The garbage collector").

So the processes Ductwork starts and owns (the ``ductwork`` command and everything it runs: the
scheduler, ``run``/``build``, Celery workers and their pool children, the local pool's worker
processes, the children that read flow files) collect the youngest generation every
``YOUNGEST`` allocations, and long-lived ones freeze what they hold after start-up, which full
collections then skip. Cyclic garbage waits
longer before it is freed (at most ``YOUNGEST`` allocations' worth: a few megabytes). A user's
own process that calls ``flow.run()`` keeps whatever settings it has: a library does not change
its host's collector.
"""

from __future__ import annotations

import gc

YOUNGEST = 50_000
"""Allocations between collections of the youngest generation (CPython's default: 700)."""
OLDER = 10
"""Collections of one generation between collections of the next (CPython's default: 10)."""


def tune_collector() -> None:
    """Collect less often; called first thing by an entry point Ductwork owns."""
    gc.set_threshold(YOUNGEST, OLDER, OLDER)


def freeze_startup() -> None:
    """What a long-lived process holds after its start-up (modules, settings, its engine)
    stays for its life: move it out of the collector's way. No collection first: it would
    delay the start by a walk of the whole heap, to free the little garbage imports leave."""
    gc.freeze()
