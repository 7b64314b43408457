"""A Luigi module for the conformance tests: a task that runs until a file appears, and one
that needs it (a build told to stop taking new tasks runs the first, not the second)."""

import os
import time

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class First(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "first.txt"))

    def run(self):
        os.makedirs(OUT, exist_ok=True)
        open(os.path.join(OUT, f"started-{os.getpid()}"), "w").close()
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(OUT, "release")) and time.time() < deadline:
            time.sleep(0.02)
        with self.output().open("w") as out:
            out.write("x")


class Second(luigi.Task):
    def requires(self):
        return First()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "second.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(str(os.getpid()))
