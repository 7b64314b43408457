"""A Luigi module for the conformance tests: a failing task whose failure handler e-mails."""

import luigi
import luigi.notifications


class Boom(luigi.Task):
    day = luigi.Parameter(default="2024-03-01")

    def run(self):
        raise RuntimeError("disk full")


@Boom.event_handler(luigi.Event.FAILURE)
def tell(task, exception):
    body = luigi.notifications.format_task_error("A load failed", task, "luigi Boom", str(exception))
    luigi.notifications.send_error_email(f"{task} failed", body, additional_recipients="dev@example.com, lead@x.org")
