"""A Luigi module for the conformance tests of ``luigi.tools.deps``/``deps_tree``: Aggregate
needs Clean, which needs Daily; Aggregate also needs Lookup, which is on no path to Daily."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Daily(luigi.ExternalTask):
    date = luigi.DateParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"daily-{self.date}.txt"))


class Clean(luigi.Task):
    date = luigi.DateParameter()

    def requires(self):
        return Daily(self.date)

    def output(self):
        return {"rows": luigi.LocalTarget(os.path.join(OUT, f"clean-{self.date}.txt"))}


class Lookup(luigi.Task):
    def output(self):
        return [luigi.LocalTarget(os.path.join(OUT, "lookup.txt"))]


class Aggregate(luigi.Task):
    date = luigi.DateParameter()
    verbose = luigi.BoolParameter(significant=False)

    def requires(self):
        return [Clean(self.date), Lookup()]

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"aggregate-{self.date}.txt"))
