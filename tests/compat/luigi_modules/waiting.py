"""A Luigi module for the conformance tests: a task that runs until a file appears."""

import os
import time

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Wait(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "waited.txt"))

    def run(self):
        os.makedirs(OUT, exist_ok=True)
        open(os.path.join(OUT, "started"), "w").close()
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(OUT, "release")) and time.time() < deadline:
            time.sleep(0.1)
        with self.output().open("w") as out:
            out.write("x")
