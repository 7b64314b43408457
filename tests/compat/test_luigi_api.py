"""The Luigi shim's API in this process, compared with what Luigi 3.8 gives: instance cache,
parameters and task ids, date intervals, targets and formats, task methods used in ``run()``."""

from __future__ import annotations

import datetime as dt

import luigi


class Export(luigi.Task):
    day = luigi.DateParameter()
    dry_run = luigi.BoolParameter(significant=False)
    token = luigi.Parameter(default="", visibility=luigi.parameter.ParameterVisibility.HIDDEN)


def test_instances_differing_in_an_insignificant_parameter_are_not_shared() -> None:
    day = dt.date(2024, 3, 15)
    dry = Export(day=day, dry_run=True)
    real = Export(day=day, dry_run=False)
    assert real.dry_run is False and dry.dry_run is True
    assert real.task_id == dry.task_id  # the same task for the scheduler, as in Luigi
    assert Export(day=day, token="b").token == "b"
    assert Export(day=day, dry_run=True) is dry  # the same values: the cached object
