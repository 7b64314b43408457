"""A Luigi module for the conformance tests: a task that reports its progress and prints."""

import os

import luigi

OUT = os.environ.get("NUMBERS_OUT", "out")


class Report(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "report.txt"))

    def run(self):
        self.set_status_message("halfway there")
        self.set_progress_percentage(50)
        self.set_tracking_url("http://tracker/job/1")
        print("printed by run()")
        with self.output().open("w") as out:
            out.write("done")
