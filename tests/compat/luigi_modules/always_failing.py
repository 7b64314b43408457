"""A Luigi module for the conformance tests: tasks that always fail, with Luigi's retry_count
(each run appends a line to ``runs-<family>.log``)."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class _Failing(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, f"{self.task_family}.txt"))

    def run(self):
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, f"runs-{self.task_family}.log"), "a") as log:
            log.write("run\n")
        raise RuntimeError("always fails")


class Once(_Failing):
    retry_count = 1


class Thrice(_Failing):
    retry_count = 3


class Both(luigi.WrapperTask):
    def requires(self):
        return [Once(), Thrice()]
