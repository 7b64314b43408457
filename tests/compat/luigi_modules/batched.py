"""A Luigi module for the conformance tests: tasks batched by batch_method (each run appends
its days to ``runs.log``)."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Export(luigi.Task):
    day = luigi.Parameter(batch_method=",".join)
    max_batch_size = 3

    def complete(self):
        return all(os.path.exists(os.path.join(OUT, f"export-{d}.csv")) for d in self.day.split(","))

    def run(self):
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "runs.log"), "a") as log:
            log.write(self.day + "\n")
        for d in self.day.split(","):
            with open(os.path.join(OUT, f"export-{d}.csv"), "w") as out:
                out.write(d)


class Exports(luigi.WrapperTask):
    def requires(self):
        return [Export(day=str(d)) for d in range(1, 6)]
