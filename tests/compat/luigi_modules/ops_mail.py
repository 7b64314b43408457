"""A Luigi module for the e-mail tests: tasks whose scheduling fails (``complete()`` or
``requires()`` raises) and tasks that fail when they run."""

import luigi


class BadComplete(luigi.Task):
    owner_email = "owner@example.com"

    def complete(self):
        raise ValueError("cannot reach the warehouse")


class BadRequires(luigi.Task):
    def requires(self):
        raise KeyError("no such partition")

    def run(self):
        pass


class Scheduling(luigi.Task):
    """Not a WrapperTask: its complete() would ask BadComplete's, and fail scheduling itself."""

    def requires(self):
        yield BadComplete()
        yield BadRequires()

    def output(self):
        return luigi.LocalTarget("out/never-written.txt")

    def run(self):
        pass


class Load(luigi.Task):
    day = luigi.Parameter()
    region = luigi.Parameter(default="north")

    def run(self):
        raise RuntimeError(f"disk full on {self.day}")


class Nightly(luigi.Task):
    def requires(self):
        yield BadComplete()
        yield Load(day="2024-03-01")
        yield Load(day="2024-03-02")

    def output(self):
        return luigi.LocalTarget("out/never-written.txt")

    def run(self):
        pass


class BadOutput(luigi.Task):
    def output(self):
        raise KeyError("no bucket configured")


class Outputs(luigi.Task):
    def requires(self):
        yield BadOutput()

    def output(self):
        return luigi.LocalTarget("out/never-written.txt")

    def run(self):
        pass
