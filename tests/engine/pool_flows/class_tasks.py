"""Class tasks (Luigi style) that tests/engine/test_pool_executor.py runs in worker processes:
requirements, a dynamic dependency and a config class resolved from the run's sources."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ductwork import Config, Flow, IntParameter, LocalTarget, Parameter, Task


class Greeting(Config):
    word = Parameter(default="hello")


class Part(Task):
    root = Parameter()
    n = IntParameter()

    def output(self) -> LocalTarget:
        return LocalTarget(Path(self.root) / f"part-{self.n}.txt")

    def run(self) -> None:
        self.output().write_text(f"{Greeting().word} {self.n} pid={os.getpid()}")


class Extra(Task):
    """Known only once ``Total`` runs (a dynamic dependency)."""

    root = Parameter()
    n = IntParameter()

    def output(self) -> LocalTarget:
        return LocalTarget(Path(self.root) / f"extra-{self.n}.txt")

    def run(self) -> None:
        self.output().write_text(f"extra {self.n} pid={os.getpid()}")


class Total(Task):
    root = Parameter()

    def requires(self) -> list[Part]:
        return [Part(root=self.root, n=i) for i in range(3)]

    def output(self) -> LocalTarget:
        return LocalTarget(Path(self.root) / "total.txt")

    def run(self) -> Iterator[Any]:
        extras = yield [Extra(root=self.root, n=i) for i in range(2)]
        lines = [t.read_text() for t in self.input()] + [t.read_text() for t in extras]
        self.output().write_text("\n".join(lines))


class_total = Flow.from_task(Total, flow_id="class_total")
