"""A Luigi module whose event handlers write down what they hear while the build is planned:
the requirements found and the external data missing (the conformance tests compare the
``luigi`` command and ``ductwork build``)."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


def _note(line):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "events.txt"), "a") as out:
        out.write(line + "\n")


class Feed(luigi.ExternalTask):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "feed.txt"))


class Digest(luigi.Task):
    def requires(self):
        return Feed()

    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "digest.txt"))

    def run(self):
        with self.output().open("w") as out:
            out.write("digest")


@luigi.Task.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def discovered(task, dependency):
    _note(f"discovered {task} -> {dependency}")


@luigi.Task.event_handler(luigi.Event.DEPENDENCY_MISSING)
def missing(task):
    _note(f"missing {task}")
