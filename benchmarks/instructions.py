"""The ``cli`` section's runs counted in CPU instructions (valgrind), not in seconds.

    python benchmarks/instructions.py [--sizes 100,1000] [--jobs 2] [--no-luigi]

A 2-core VM's speed moves by 10-50% from one minute to the next (other tenants of its host),
which hides a change of a few per cent in wall or CPU time however the runs are interleaved.
The number of instructions a process executes does not move with its neighbours: this script
runs each ``ductwork run`` / ``ductwork build`` of the ``cli`` section (and Luigi's local
scheduler on the same module) once under ``valgrind --tool=callgrind`` and prints the
instructions per task, ``(I(N) - I(100)) / (N - 100)``, and the fixed count.

Under valgrind a process runs ~50x slower, and an in-process run decides things by the clock:
a try that runs past ``INLINE_LIMIT`` sends the tries after it to the threads, the record is
written every ``flush_interval``. Slowed down, a no-op try would look long and every run would
take the threads' path, with fifty times the commits. So ``ductwork`` runs here through a
launcher that stretches those few durations by ``--slowdown`` first (the same decisions as at
full speed); the code measured is the installed code.

What it does not show: time spent waiting (disk, locks), and the cost of an instruction (cache
misses; a system call counts as one). Use it to compare two versions of the code, the
wall-clock ``cli`` section for the figures users see. Two runs of the same code differ by
about 1%.

Needs ``valgrind`` (``apt install valgrind``); Luigi is installed as for the ``cli`` section.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cli_runs import STYLES, Workspace, check_record, clean_env, ductwork_argv, luigi_python

_COLLECTED = re.compile(rb"Collected : (\d+)")

LAUNCHER = """
import sys
factor = float(sys.argv.pop(1))
from ductwork.engine.executors import inline
from ductwork.engine.packed_logs import PackedLogs
from ductwork.services.local_runs import StoreRecording
for name in ("INLINE_LIMIT", "WAIT_LIMIT", "PARK_TIME"):
    setattr(inline, name, getattr(inline, name) * factor)
StoreRecording.__init__.__kwdefaults__["flush_interval"] *= factor
PackedLogs.__init__.__kwdefaults__["spill_after"] *= factor
from ductwork.cli.main import main
sys.argv[0] = "ductwork"
main()
"""
"""``python -c LAUNCHER FACTOR ARGS...``: ``ductwork ARGS...`` with the clock's thresholds stretched."""


def counted(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions ``argv`` executes, children included (valgrind follows them)."""
    env = {**env, "PYTHONHASHSEED": "0"}  # the same dict layouts, hence the same work, each run
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--trace-children=yes", *argv]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    found = [int(m) for m in _COLLECTED.findall(done.stderr)]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:].decode()}")
    return sum(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="two sizes: the small one is the baseline")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--no-luigi", action="store_true")
    parser.add_argument("--slowdown", type=float, default=50.0, help="how much slower a process runs under valgrind")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind): nothing counted", file=sys.stderr)
        return 2
    small, large = (int(s) for s in args.sizes.split(","))
    styles = [s for s in args.styles.split(",") if s]
    root = Path(tempfile.mkdtemp(prefix="ductwork-instructions-"))
    try:
        space = Workspace(root, [small, large])
        luigi = None if args.no_luigi else luigi_python()
        jobs: list[tuple[str, str, int]] = [
            (s, shape, n) for s in styles for shape in ("chain", "fan") for n in (small, large)
        ]
        if luigi is not None:
            jobs += [("luigi", shape, n) for shape in ("chain", "fan") for n in (small, large)]

        def argv_env(
            style: str, shape: str, n: int, factor: float = args.slowdown
        ) -> tuple[list[str], dict[str, str], Path, Path | None]:
            if style == "luigi":
                assert luigi is not None
                file = space.files[("luigi", shape, n)]
                env = clean_env()
                env["PYTHONPATH"] = str(file.parent)
                argv = [str(luigi), "-m", "luigi", "--module", file.stem, "Top", "--local-scheduler", "--workers", "1"]
                return argv, env, file.parent, None
            home = Path(tempfile.mkdtemp(prefix="home-", dir=root))
            command = ductwork_argv(style, space.files[(style, shape, n)])[1:]
            return [sys.executable, "-c", LAUNCHER, str(factor), *command], space.env(home), root, home

        for style in {*styles, *(["luigi"] if luigi else [])}:  # bytecode caches written, untimed
            argv, env, cwd, _ = argv_env(style, "chain", small, 1.0)
            subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)

        def one(job: tuple[str, str, int]) -> int:
            argv, env, cwd, home = argv_env(*job)
            count = counted(argv, env, cwd)
            if home is not None:
                check_record(home, job[2])
            return count

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            counts = dict(zip(jobs, pool.map(one, jobs), strict=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    labels = {
        "operators": "ductwork run (operators)",
        "decorated": "ductwork run (@task/@flow)",
        "classes": "ductwork build (classes)",
        "luigi": "luigi local scheduler",
    }
    print(f"# instructions (valgrind), per task = (I({large}) - I({small})) / {large - small}")
    print("| command | shape | M instructions/task | fixed M instructions | Luigi / ours (per task) |")
    print("|---|---|---:|---:|---|")
    for style in [*styles, *(["luigi"] if luigi else [])]:
        for shape in ("chain", "fan"):
            per_task = (counts[(style, shape, large)] - counts[(style, shape, small)]) / (large - small)
            fixed = counts[(style, shape, small)] - small * per_task
            ratio = ""
            if style == "classes" and luigi is not None:
                luigi_per_task = (counts[("luigi", shape, large)] - counts[("luigi", shape, small)]) / (large - small)
                ratio = f"{luigi_per_task / per_task:.1f}x"
            print(f"| {labels[style]} | {shape} | {per_task / 1e6:.3f} | {fixed / 1e6:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
