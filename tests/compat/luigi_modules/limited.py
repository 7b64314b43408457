"""A Luigi module for the conformance tests: tasks that hold a resource while they run (each
appends its start and end times to ``spans-<family>.log``)."""

import os
import time

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class _Holds(luigi.Task):
    n = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"{self.task_family}-{self.n}.txt"))

    def run(self):
        started = time.time()
        time.sleep(0.8)
        with open(os.path.join(OUT, f"spans-{self.task_family}.log"), "a") as log:
            log.write(f"{started} {time.time()}\n")
        with self.output().open("w") as out:
            out.write("x")


class Query(_Holds):
    resources = {"db": 1}


class BigQuery(_Holds):
    def process_resources(self):
        return {"db": 2}


class Queries(luigi.WrapperTask):
    def requires(self):
        return [Query(n=i) for i in range(3)] + [BigQuery(n=i) for i in range(2)]
