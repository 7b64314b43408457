"""A Luigi pipeline given a schedule with one line of Ductwork."""

import luigi_tasks

from ductwork import Flow

luigi_total = Flow.from_task(luigi_tasks.Total, flow_id="luigi_total", schedule=None)
