"""A Luigi module for the conformance tests: parameters, file targets, a wrapper, a missing
external input, dynamic requirements, retry_count."""

import datetime
import json
import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Raw(luigi.ExternalTask):
    day = luigi.DateParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"raw-{self.day}.txt"))


class Count(luigi.Task):
    day = luigi.DateParameter()
    scale = luigi.IntParameter(default=1)

    def requires(self):
        return Raw(day=self.day)

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"count-{self.day}-{self.scale}.json"))

    def run(self):
        with self.input().open() as fh:
            n = len(fh.read().split())
        with self.output().open("w") as out:
            json.dump({"day": str(self.day), "words": n * self.scale}, out)


class Week(luigi.WrapperTask):
    week = luigi.DateIntervalParameter()
    scale = luigi.IntParameter(default=1)

    def requires(self):
        return [Count(day=d, scale=self.scale) for d in self.week.dates()]


class Square(luigi.Task):
    n = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"square-{self.n}.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(str(self.n * self.n))


class SumOfSquares(luigi.Task):
    upto = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"sum-{self.upto}.txt"))

    def run(self):
        squares = yield luigi.DynamicRequirements([Square(n=i) for i in range(1, self.upto + 1)])
        total = sum(int(t.open().read()) for t in squares)
        with self.output().open("w") as out:
            out.write(str(total))


class Flaky(luigi.Task):
    retry_count = 2
    marker = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"flaky-{self.marker}.txt"))

    def run(self):
        tries = os.path.join(OUT, f"flaky-{self.marker}.tries")
        count = 1
        if os.path.exists(tries):
            with open(tries) as fh:
                count = int(fh.read()) + 1
        with open(tries, "w") as fh:
            fh.write(str(count))
        if count < 2:
            raise RuntimeError("first try fails")
        with self.output().open("w") as out:
            out.write(f"ok after {count}")


TODAY = datetime.date(2024, 3, 4)
