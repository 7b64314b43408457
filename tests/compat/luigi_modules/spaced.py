"""A Luigi module for the conformance tests: task namespaces set by luigi.namespace() and
luigi.auto_namespace() before the classes."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class _Writes(luigi.Task):
    """Writes its family name to a file named after it."""

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"{self.task_family}.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(self.task_family)


class Named(_Writes):
    task_namespace = "team"


luigi.namespace("ns2")


class Spaced(_Writes):
    def requires(self):
        return Named()


luigi.namespace()
luigi.auto_namespace(scope=__name__)


class Auto(_Writes):
    def requires(self):
        return Spaced()


luigi.namespace(scope=__name__)
