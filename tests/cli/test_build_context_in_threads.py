"""A build's settings reach every try, in whichever thread it runs.

The in-process executor runs short tries in the run loop's thread and, when one of them runs
long, hands the tries queued after it to its threads from a timer's thread (ADR 0020). A
setting given on the command line (``--Settings-out``) lives in the run's context: the tries
handed over must run in that context, not the timer's."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Cli

SLOW_PARTS = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from ductwork import Config, IntParameter, LocalTarget, PathParameter, Task, WrapperTask

    class Settings(Config):
        out = PathParameter(default=Path("default-out"))

    class Part(Task):
        i = IntParameter()
        def output(self):
            return LocalTarget(Settings().out / f"part-{self.i}.txt")
        def run(self):
            time.sleep(0.02)  # past the in-line limit: the parts after it go to the threads
            with self.output().open("w") as fh:
                fh.write(str(self.i))

    class Merge(Task):
        def requires(self):
            return [Part(i=i) for i in range(8)]
        def output(self):
            return LocalTarget(Settings().out / "merge.txt")
        def run(self):
            with self.output().open("w") as fh:
                fh.write(str(sum(int(t.read_text()) for t in self.input())))
    """
)


def test_tries_handed_to_the_threads_see_the_command_line_settings(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "slow_parts.py").write_text(SLOW_PARTS)
    done = cli("build", "--module", "slow_parts", "Merge", "--workers", "2", "--Settings-out", "built", "--no-progress")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "built").iterdir()) == sorted(
        ["merge.txt", *(f"part-{i}.txt" for i in range(8))]
    )
    assert (tmp_path / "built" / "merge.txt").read_text() == str(sum(range(8)))
    assert not (tmp_path / "default-out").exists()
