"""A Luigi module in the flows folder; luigi_flow.py schedules it."""

import os

import luigi


class Part(luigi.Task):
    i = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(os.environ["SHIM_TEST_MARKS"], f"part-{self.i}.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(str(self.i * self.i))


class Total(luigi.Task):
    upto = luigi.IntParameter(default=3)

    def requires(self):
        return [Part(i=i) for i in range(self.upto)]

    def output(self):
        return luigi.LocalTarget(os.path.join(os.environ["SHIM_TEST_MARKS"], f"total-{self.upto}.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(str(sum(int(t.open().read()) for t in self.input())))
