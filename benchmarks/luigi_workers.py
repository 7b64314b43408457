"""``ductwork build --workers N`` on Luigi tasks that compute (ADR 0028): whole processes, the
wall time of a build of ``TASKS`` tasks each busy in Python for about ``WORK`` seconds of CPU,
with 1, 2 and (for comparison) the threads of Ductwork's own class tasks at 2. Each figure is
the median of ``REPEATS`` interleaved runs on a fresh home. On 2 cores, forked Luigi tasks with
2 workers should take about half the time of 1 worker; threads take as long as 1 worker (Python's
GIL), plus their turn-taking.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = 4
REPEATS = 3
LOOPS = 6_000_000
"""Iterations of a busy loop per task: about 0.3-0.5 s of CPU on this VM."""

MODULE = """
import os

import {package} as luigi


class Busy(luigi.Task):
    i = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(os.environ["BUSY_OUT"], str(self.i)))

    def run(self):
        total = 0
        for n in range({loops}):
            total += n
        with self.output().open("w") as f:
            f.write(str(total))


class Top(luigi.WrapperTask):
    def requires(self):
        return [Busy(i=i) for i in range({tasks})]
"""


def _build(module: Path, workers: int, home: Path) -> float:
    exe = str(Path(sys.executable).parent / "ductwork")
    argv = [exe, "build", "--module", module.stem, "Top", "--workers", str(workers), "--no-progress"]
    env = {"PATH": "/usr/bin:/bin", "DUCTWORK_HOME": str(home), "PYTHONPATH": str(module.parent)}
    env["BUSY_OUT"] = str(home / "out")
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=module.parent, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def measure() -> dict[str, float]:
    """Median wall seconds per case: ``luigi w1``, ``luigi w2`` (forked), ``ductwork w2`` (threads)."""
    with tempfile.TemporaryDirectory(prefix="ductwork-luigi-workers-") as scratch:
        root = Path(scratch)
        luigi_module = root / "busy_luigi.py"
        luigi_module.write_text(MODULE.format(package="luigi", loops=LOOPS, tasks=TASKS))
        own_module = root / "busy_own.py"
        own_module.write_text(MODULE.format(package="ductwork", loops=LOOPS, tasks=TASKS))
        cases = {"luigi w1": (luigi_module, 1), "luigi w2": (luigi_module, 2), "ductwork w2": (own_module, 2)}
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for rep in range(REPEATS + 1):
            for name, (module, workers) in cases.items():
                wall = _build(module, workers, root / f"home-{name.replace(' ', '-')}-{rep}")
                if rep:  # the first round writes the bytecode caches
                    samples[name].append(wall)
        return {name: statistics.median(values) for name, values in samples.items()}


def print_rows(figures: dict[str, float]) -> None:
    print(f"# luigi-workers: ductwork build of {TASKS} busy tasks, wall s, median of {REPEATS} interleaved")
    print("| case        | wall s | vs luigi w1 |")
    print("|-------------|--------|-------------|")
    base = figures["luigi w1"]
    for name, wall in figures.items():
        print(f"| {name:<11} | {wall:>6.2f} | {wall / base:>11.2f} |")


if __name__ == "__main__":
    print_rows(measure())
