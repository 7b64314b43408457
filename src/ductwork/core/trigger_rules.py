"""Trigger rules: when a task may run, given how its upstream tasks ended.

``decide`` is a pure function of a rule and a tally of upstream outcomes. The run tracker keeps
the tally up to date as upstream tasks finish (so readiness never rescans the graph) and calls
``decide`` after each change. Rules decide as early as the tally allows: ``one_success`` runs
at the first upstream success, ``all_success`` fails at the first upstream failure, as in
Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ductwork.errors import DefinitionError, did_you_mean


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    """Every upstream task is done and one of them succeeded: the rule of teardown tasks (they
    clean up after a failure, but not when their setup never ran). When none succeeded the task
    is ``upstream_failed`` if one failed, else ``skipped``, as Airflow's
    ``all_done_setup_success`` ends a teardown whose setup failed or was skipped."""

    @classmethod
    def parse(cls, value: str | TriggerRule, *, where: str = "") -> TriggerRule:
        try:
            return cls(value)
        except ValueError:
            prefix = f"{where}: " if where else ""
            names = [r.value for r in cls]
            raise DefinitionError(
                f"{prefix}unknown trigger rule {value!r}.{did_you_mean(str(value), names)} "
                f"Known rules: {', '.join(names)}"
            ) from None


class Decision(StrEnum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(slots=True)
class UpstreamTally:
    """How many of a task's upstream tasks ended in each terminal state."""

    total: int
    success: int = 0
    failed: int = 0
    upstream_failed: int = 0
    skipped: int = 0
    setups: frozenset[str] = frozenset()
    """A teardown's upstream setup tasks: its rule looks at how they ended, not at the others."""
    setup_success: int = 0
    setup_failures: int = 0

    @property
    def done(self) -> int:
        return self.success + self.failed + self.upstream_failed + self.skipped

    @property
    def failures(self) -> int:
        return self.failed + self.upstream_failed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total


def decide(rule: TriggerRule, t: UpstreamTally) -> Decision:
    """What to do with a waiting task under ``rule`` given its upstream tally."""
    if t.total == 0 or rule is TriggerRule.ALWAYS:
        return Decision.RUN
    return _RULES[rule](t)


def _all_success(t: UpstreamTally) -> Decision:
    if t.failures:
        return Decision.UPSTREAM_FAILED
    if t.skipped:
        return Decision.SKIP
    return Decision.RUN if t.all_done else Decision.WAIT


def _all_failed(t: UpstreamTally) -> Decision:
    if t.success or t.skipped:
        return Decision.SKIP
    return Decision.RUN if t.all_done else Decision.WAIT


def _all_done(t: UpstreamTally) -> Decision:
    return Decision.RUN if t.all_done else Decision.WAIT


def _all_skipped(t: UpstreamTally) -> Decision:
    if t.success or t.failures:
        return Decision.SKIP
    return Decision.RUN if t.all_done else Decision.WAIT


def _one_success(t: UpstreamTally) -> Decision:
    if t.success:
        return Decision.RUN
    if not t.all_done:
        return Decision.WAIT
    return Decision.UPSTREAM_FAILED if t.failures else Decision.SKIP


def _one_failed(t: UpstreamTally) -> Decision:
    if t.failures:
        return Decision.RUN
    return Decision.SKIP if t.all_done else Decision.WAIT


def _one_done(t: UpstreamTally) -> Decision:
    if t.success or t.failed:
        return Decision.RUN
    return Decision.SKIP if t.all_done else Decision.WAIT


def _none_failed(t: UpstreamTally) -> Decision:
    if t.failures:
        return Decision.UPSTREAM_FAILED
    return Decision.RUN if t.all_done else Decision.WAIT


def _none_failed_min_one_success(t: UpstreamTally) -> Decision:
    if t.failures:
        return Decision.UPSTREAM_FAILED
    if not t.all_done:
        return Decision.WAIT
    return Decision.RUN if t.success else Decision.SKIP


def _all_done_min_one_success(t: UpstreamTally) -> Decision:
    if not t.all_done:
        return Decision.WAIT
    # A teardown counts its setups only (Airflow's all_done_setup_success): the success of
    # another upstream task did not make it clean up what its failed setup never set up.
    success, failures = (t.setup_success, t.setup_failures) if t.setups else (t.success, t.failures)
    if success:
        return Decision.RUN
    # Airflow: a teardown whose setup failed is upstream_failed (a failure the user must see),
    # one whose setups were all skipped is skipped.
    return Decision.UPSTREAM_FAILED if failures else Decision.SKIP


def _none_skipped(t: UpstreamTally) -> Decision:
    if t.skipped:
        return Decision.SKIP
    return Decision.RUN if t.all_done else Decision.WAIT


_RULES = {
    TriggerRule.ALL_SUCCESS: _all_success,
    TriggerRule.ALL_FAILED: _all_failed,
    TriggerRule.ALL_DONE: _all_done,
    TriggerRule.ALL_SKIPPED: _all_skipped,
    TriggerRule.ONE_SUCCESS: _one_success,
    TriggerRule.ONE_FAILED: _one_failed,
    TriggerRule.ONE_DONE: _one_done,
    TriggerRule.NONE_FAILED: _none_failed,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: _none_failed_min_one_success,
    TriggerRule.NONE_SKIPPED: _none_skipped,
    TriggerRule.ALL_DONE_MIN_ONE_SUCCESS: _all_done_min_one_success,
}
