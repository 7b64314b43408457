"""A Luigi module for the conformance tests: tasks that ``run()`` yields, which fail or whose
external data is missing."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Bad(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "bad.txt"))

    def run(self):
        raise RuntimeError("boom in Bad")


class Missing(luigi.ExternalTask):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "never-there.txt"))


class Parent(luigi.Task):
    which = luigi.Parameter(default="bad")

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"parent-{self.which}.txt"))

    def run(self):
        yield Bad() if self.which == "bad" else Missing()
        with self.output().open("w") as out:
            out.write("x")
