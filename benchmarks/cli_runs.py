"""What a user types, timed as whole processes: ``ductwork run`` / ``ductwork build`` recorded in
the metadata database, and the same Luigi module built by Luigi's own local scheduler.

Every figure is a whole process (interpreter start, imports, database migration check, the
run, its record), measured on a fresh ``DUCTWORK_HOME`` each time. The per-task cost is
``(t(N) - t(100)) / (N - 100)``, which takes the fixed start-up cost out; the fixed cost is
``t(100) - 100 * per-task``. Runs of the things compared are interleaved and each figure is the
median of ``REPEATS`` runs: this 2-core VM's speed moves from one minute to the next, and other
work on it moves it more. CPU columns are the process's own user+system time.

After every ``ductwork`` run the benchmark reads the database back and checks that it holds
every try with its state, start and end: no figure is bought by dropping a record.

Luigi is installed by this script, with pip, into a throwaway virtual environment under
``~/.cache/ductwork-bench/luigi-venv`` (``LUIGI_VERSION``); it is never a dependency of Ductwork.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPEATS = 3
LUIGI_VERSION = "3.8.1"
STYLES = ("operators", "decorated", "classes")


# --- the flows ------------------------------------------------------------------------------
NOOP = """

class Noop(EmptyOperator):
    # Runs, and does nothing: an EmptyOperator with nothing attached is not run at all.
    def execute(self, context):
        return None

"""
"""A no-op operator that runs: the tasks of the benchmarks' flows go through the executor, as a
task of real work does (and as every ``EmptyOperator`` did before it was not run at all)."""


def operators_file(shape: str, n: int) -> str:
    if shape == "chain":
        body = f"""
            with Flow("bench") as flow:
                previous = None
                for i in range({n}):
                    op = Noop(task_id=f"t{{i}}")
                    if previous is not None:
                        previous >> op
                    previous = op
        """
    else:
        body = f"""
            with Flow("bench") as flow:
                start, end = Noop(task_id="start"), Noop(task_id="end")
                for i in range({n - 2}):
                    start >> Noop(task_id=f"t{{i}}") >> end
        """
    return "from ductwork import EmptyOperator, Flow\n" + NOOP + textwrap.dedent(body)


def decorated_file(shape: str, n: int) -> str:
    if shape == "chain":
        body = f"""
            @task
            def step(previous: int | None = None) -> None:
                return None

            @flow(flow_id="bench")
            def bench() -> None:
                previous = step.override(task_id="t0")()
                for i in range(1, {n}):
                    previous = step.override(task_id=f"t{{i}}")(previous)
        """
    else:
        body = f"""
            @task
            def leaf(i: int) -> None:
                return None

            @task
            def total(values: list[object]) -> None:
                return None

            @flow(flow_id="bench")
            def bench() -> None:
                total([leaf.override(task_id=f"t{{i}}")(i) for i in range({n - 1})])
        """
    return "from ductwork import flow, task\n" + textwrap.dedent(body)


def classes_file(shape: str, n: int, *, package: str = "ductwork") -> str:
    """A Luigi module: ``Step`` chain of ``n`` or ``n - 1`` leaves and a ``Sum``. With
    ``package="luigi"`` it is the same module for Luigi itself."""
    head = "import luigi\n" if package == "luigi" else "import ductwork as luigi\n"
    head += textwrap.dedent("""
        DONE = set()


        class Noop(luigi.Task):
            # Complete once run in this process: both schedulers check it before and after.
            def complete(self):
                return self.task_id in DONE

            def run(self):
                DONE.add(self.task_id)
    """)
    if shape == "chain":
        body = f"""
            class Step(Noop):
                i = luigi.IntParameter()

                def requires(self):
                    return Step(i=self.i - 1) if self.i > 0 else []


            class Top(luigi.WrapperTask):
                def requires(self):
                    return Step(i={n - 2})
        """
    else:
        body = f"""
            class Leaf(Noop):
                i = luigi.IntParameter()


            class Top(Noop):
                def requires(self):
                    return [Leaf(i=i) for i in range({n - 1})]
        """
    return head + textwrap.dedent(body)


# --- running a process ----------------------------------------------------------------------
def timed(argv: list[str], *, env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, its output) for one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{output}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr


def ductwork_argv(style: str, file: Path) -> list[str]:
    exe = [str(Path(sys.executable).parent / "ductwork")]  # the console script a user types
    if style == "classes":
        return [*exe, "build", "--module", str(file), "Top", "--no-progress"]
    return [*exe, "run", f"{file}:bench", "--no-progress"]


def check_record(home: Path, expected_tasks: int) -> None:
    """The database holds the run and every try with its state, start and end."""
    db = home / "ductwork.db"
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select state from runs").fetchall()
        rows = conn.execute("select state, start_date, end_date from task_instances").fetchall()
    problems = []
    if len(runs) != 1 or runs[0][0] != "success":
        problems.append(f"runs: {runs}")
    if len(rows) != expected_tasks:
        problems.append(f"{len(rows)} task rows, expected {expected_tasks}")
    bad = [r for r in rows if r[0] != "success" or r[1] is None or r[2] is None]
    if bad:
        problems.append(f"{len(bad)} rows without success/start/end, e.g. {bad[:3]}")
    logs = _logged_tries(home / "logs")
    if logs != expected_tasks:
        problems.append(f"{logs} try logs on disk, expected {expected_tasks}")
    if problems:
        raise AssertionError(f"the record in {db} is incomplete: " + "; ".join(problems))


def _logged_tries(logs: Path) -> int:
    """Try logs on disk: files of their own, and entries of the runs' packs (ADR 0018)."""
    from ductwork.engine.packed_logs import PACK_NAME, entries

    files = list(logs.rglob("*.log"))
    return sum(len(list(entries(p))) if p.name == PACK_NAME else 1 for p in files)


def clean_env() -> dict[str, str]:
    """The environment for the timed processes: no Ductwork or Luigi settings of the caller, and
    bytecode caching on (as for an installed package; this machine's shell sets
    PYTHONDONTWRITEBYTECODE, which would add the compiling of every imported module to every
    figure). The first, untimed, run of each program writes the caches."""
    drop = ("DUCTWORK_", "LUIGI_", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


class Workspace:
    """Flow files of every style, shape and size, written once."""

    def __init__(self, root: Path, sizes: list[int]) -> None:
        self.root = root
        self.files: dict[tuple[str, str, int], Path] = {}
        writers: dict[str, Callable[[str, int], str]] = {
            "operators": operators_file,
            "decorated": decorated_file,
            "classes": classes_file,
        }
        for style, write in writers.items():
            for shape in ("chain", "fan"):
                for n in sizes:
                    path = root / "flows" / f"{style}_{shape}_{n}.py"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(write(shape, n))
                    self.files[(style, shape, n)] = path
                    luigi_path = root / "luigi" / f"luigi_{shape}_{n}.py"
                    luigi_path.parent.mkdir(parents=True, exist_ok=True)
                    luigi_path.write_text(classes_file(shape, n, package="luigi"))
                    self.files[("luigi", shape, n)] = luigi_path

    def env(self, home: Path) -> dict[str, str]:
        env = clean_env()
        env["DUCTWORK_HOME"] = str(home)
        env["DUCTWORK_FLOWS"] = str(self.root / "flows")
        return env

    def run_ductwork(self, style: str, shape: str, n: int) -> tuple[float, float]:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.root))
        file = self.files[(style, shape, n)]
        wall, cpu, _ = timed(ductwork_argv(style, file), env=self.env(home), cwd=self.root)
        check_record(home, n)
        return wall, cpu

    def run_luigi(self, python: Path, shape: str, n: int) -> tuple[float, float]:
        file = self.files[("luigi", shape, n)]
        env = clean_env()
        env["PYTHONPATH"] = str(file.parent)
        argv = [str(python), "-m", "luigi", "--module", file.stem, "Top", "--local-scheduler", "--workers", "1"]
        wall, cpu, out = timed(argv, env=env, cwd=file.parent)
        if ":)" not in out:
            raise RuntimeError(f"luigi did not succeed:\n{out[-2000:]}")
        return wall, cpu


def luigi_python() -> Path:
    """Python of a throwaway virtual environment with Luigi (made on first use)."""
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ductwork-bench" / "luigi-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"luigi=={LUIGI_VERSION}"],
            check=True,
        )
    return python


def file_create_us(n: int = 2000) -> float:
    """What creating one small file costs on the temporary folder's file system right now (us)."""
    with tempfile.TemporaryDirectory(prefix="create-") as folder:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        started = time.perf_counter()
        for i in range(n):
            fd = os.open(Path(folder) / f"t{i}.1.log", flags, 0o644)
            os.write(fd, b"a line of log\n")
            os.close(fd)
        return (time.perf_counter() - started) / n * 1e6


# --- the rows -------------------------------------------------------------------------------
def _medians(samples: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}


def measure(sizes: list[int], *, with_luigi: bool = True, repeats: int = REPEATS) -> list[dict[str, object]]:
    """One row per (what, shape): whole-process wall and CPU at each size, per-task cost between
    the smallest and the largest size, fixed cost; Luigi rows and the ratio when asked."""
    small, large = min(sizes), max(sizes)
    python = luigi_python() if with_luigi else None
    with tempfile.TemporaryDirectory(prefix="ductwork-bench-cli-") as tmp:
        work = Workspace(Path(tmp), sorted({small, large}))
        work.run_ductwork("operators", "chain", small)  # untimed: bytecode caches
        if python is not None:
            work.run_luigi(python, "chain", small)
        samples: dict[str, list[tuple[float, float]]] = {}
        for _ in range(repeats):  # interleaved: one of each per round
            for shape in ("chain", "fan"):
                for n in (small, large):
                    for style in STYLES:
                        samples.setdefault(f"{style}/{shape}/{n}", []).append(work.run_ductwork(style, shape, n))
                    if python is not None:
                        samples.setdefault(f"luigi/{shape}/{n}", []).append(work.run_luigi(python, shape, n))
        med = _medians(samples)
    rows: list[dict[str, object]] = []
    for what in (*STYLES, *(("luigi",) if with_luigi else ())):
        for shape in ("chain", "fan"):
            (w_small, c_small), (w_large, c_large) = med[f"{what}/{shape}/{small}"], med[f"{what}/{shape}/{large}"]
            per_task = (w_large - w_small) / (large - small)
            cpu_per_task = (c_large - c_small) / (large - small)
            rows.append(
                {
                    "what": what,
                    "shape": shape,
                    "n": large,
                    "wall_s": w_large,
                    "cpu_s": c_large,
                    "per_task_ms": per_task * 1000,
                    "cpu_per_task_ms": cpu_per_task * 1000,
                    "fixed_s": w_small - small * per_task,
                }
            )
    if with_luigi:
        by = {(r["what"], r["shape"]): r for r in rows}
        for shape in ("chain", "fan"):
            luigi_wall = float(by[("luigi", shape)]["wall_s"])  # type: ignore[arg-type]
            ours = by[("classes", shape)]
            ours["vs_luigi"] = luigi_wall / float(ours["wall_s"])  # type: ignore[arg-type]
            luigi_per_task = float(by[("luigi", shape)]["per_task_ms"])  # type: ignore[arg-type]
            ours["vs_luigi_per_task"] = luigi_per_task / float(ours["per_task_ms"])  # type: ignore[arg-type]
    return rows


STARTUP_FLOW = """
from ductwork import EmptyOperator, Flow

with Flow("listed_{i}") as flow:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

STARTUP_REPEATS = 7


def measure_startup(repeats: int = STARTUP_REPEATS) -> list[tuple[str, float, float]]:
    """(command, median ms, best ms) of commands that do little besides starting: the floor
    every command pays (target: ``--version`` and ``flows list`` <= 0.25 s)."""
    exe = str(Path(sys.executable).parent / "ductwork")
    with tempfile.TemporaryDirectory(prefix="ductwork-bench-startup-") as tmp:
        root = Path(tmp)
        flows = root / "flows"
        flows.mkdir()
        for i in range(10):
            (flows / f"listed_{i}.py").write_text(STARTUP_FLOW.format(i=i))
        env = clean_env()
        env.update(DUCTWORK_HOME=str(root / "home"), DUCTWORK_FLOWS_FOLDER=str(flows))
        commands: list[tuple[str, list[str], bool]] = [
            ("python -c pass (this environment)", [sys.executable, "-c", "pass"], False),
            ("ductwork --version", [exe, "--version"], False),
            ("ductwork flows list (10 files, index warm)", [exe, "flows", "list"], False),
            ("ductwork runs list (existing database)", [exe, "runs", "list"], False),
            ("ductwork runs list (new DUCTWORK_HOME)", [exe, "runs", "list"], True),
        ]
        for _, argv, _fresh in commands:  # untimed: bytecode caches, the flow index, the database
            timed(argv, env=env, cwd=root)
        samples: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        for round_ in range(repeats):
            for label, argv, fresh in commands:
                run_env = env if not fresh else {**env, "DUCTWORK_HOME": str(root / f"fresh-{round_}")}
                wall, _, _ = timed(argv, env=run_env, cwd=root)
                samples[label].append(wall * 1000)
    return [(label, statistics.median(v), min(v)) for label, v in samples.items()]


def print_startup(rows: list[tuple[str, float, float]]) -> None:
    print(f"| start-up (median of {STARTUP_REPEATS}, whole processes) | median ms | best ms |")
    print("|---|---|---|")
    for label, median, best in rows:
        print(f"| {label:<50} | {median:>9.1f} | {best:>7.1f} |", flush=True)


LABELS = {
    "operators": "ductwork run (operators)",
    "decorated": "ductwork run (@task/@flow)",
    "classes": "ductwork build (classes)",
    "luigi": f"luigi {LUIGI_VERSION} local scheduler",
}


def print_rows(rows: list[dict[str, object]]) -> None:
    nan = float("nan")
    cost = file_create_us()
    print(f"# creating a file here costs {cost:.1f} us now (short in-process tries share one log file: ADR 0018)")
    print(
        "| command                        | shape | N     | wall s | CPU s  | ms/task | CPU ms/task | fixed s "
        "| Luigi / ours (whole, per task) |"
    )
    print("|" + "|".join(["---"] * 9) + "|")
    for r in rows:
        ratio = f"{r['vs_luigi']:.1f}x, {r['vs_luigi_per_task']:.1f}x" if "vs_luigi" in r else ""
        print(
            f"| {LABELS[str(r['what'])]:<30} | {r['shape']:<5} | {r['n']:>5} | {r['wall_s']:>6.3f} "
            f"| {r['cpu_s']:>6.3f} | "
            f"{r['per_task_ms']:>7.3f} | {r.get('cpu_per_task_ms', nan):>11.3f} | {r['fixed_s']:>7.3f} | {ratio:<30} |",
            flush=True,
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--no-luigi", action="store_true")
    args = parser.parse_args()
    print_rows(measure([int(s) for s in args.sizes.split(",")], with_luigi=not args.no_luigi, repeats=args.repeats))
