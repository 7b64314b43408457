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


class Located(luigi.Task):
    """Reads luigi.cfg as Luigi users write it: ${ENV} values, a camelCase parameter, a
    dashed key read with underscores."""

    root = luigi.Parameter(default="nowhere")
    batchSize = luigi.IntParameter(default=1)  # as Luigi users name them

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "located.txt"))

    def run(self):
        key = luigi.configuration.get_config().get("paths", "some_key", "unset")
        with self.output().open("w") as out:
            out.write(f"{self.root}|{self.batchSize}|{key}")
