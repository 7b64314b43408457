"""A Luigi module for the conformance tests: a parameter read from another section of
luigi.cfg through config_path."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Submit(luigi.Task):
    master = luigi.Parameter(default="local", config_path={"section": "spark", "name": "master"})

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "submitted.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write(self.master)
