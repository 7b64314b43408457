"""A Luigi module for the conformance tests: a failing task with an owner, and no failure
handler of its own (the e-mail is the worker's, as Luigi sends it)."""

import luigi


class Load(luigi.Task):
    day = luigi.Parameter(default="2024-03-01")
    owner_email = "owner@example.com"

    def run(self):
        raise RuntimeError("disk full")
