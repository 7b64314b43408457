"""Trigger rules decide from upstream tallies, early when they can, and always once all are done."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.trigger_rules import Decision, TriggerRule, UpstreamTally, decide
from ductwork.errors import DefinitionError

R, D = TriggerRule, Decision


def tally(
    success: int = 0, failed: int = 0, upstream_failed: int = 0, skipped: int = 0, pending: int = 0
) -> UpstreamTally:
    total = success + failed + upstream_failed + skipped + pending
    return UpstreamTally(total, success, failed, upstream_failed, skipped)


@pytest.mark.parametrize(
    "rule, t, expected",
    [
        (R.ALL_SUCCESS, tally(success=2), D.RUN),
        (R.ALL_SUCCESS, tally(success=1, pending=1), D.WAIT),
        (R.ALL_SUCCESS, tally(failed=1, pending=3), D.UPSTREAM_FAILED),
        (R.ALL_SUCCESS, tally(success=1, skipped=1), D.SKIP),
        (R.ALL_FAILED, tally(failed=1, upstream_failed=1), D.RUN),
        (R.ALL_FAILED, tally(failed=1, success=1), D.SKIP),
        (R.ALL_DONE, tally(failed=1, skipped=1, success=1), D.RUN),
        (R.ALL_DONE, tally(failed=1, pending=1), D.WAIT),
        (R.ALL_SKIPPED, tally(skipped=2), D.RUN),
        (R.ONE_SUCCESS, tally(success=1, pending=5), D.RUN),
        (R.ONE_SUCCESS, tally(failed=2), D.UPSTREAM_FAILED),
        (R.ONE_SUCCESS, tally(skipped=2), D.SKIP),
        (R.ONE_FAILED, tally(failed=1, pending=3), D.RUN),
        (R.ONE_FAILED, tally(success=3), D.SKIP),
        (R.ONE_DONE, tally(failed=1, pending=2), D.RUN),
        (R.NONE_FAILED, tally(success=1, skipped=1), D.RUN),
        (R.NONE_FAILED, tally(upstream_failed=1, pending=1), D.UPSTREAM_FAILED),
        (R.NONE_FAILED_MIN_ONE_SUCCESS, tally(skipped=2), D.SKIP),
        (R.NONE_FAILED_MIN_ONE_SUCCESS, tally(skipped=1, success=1), D.RUN),
        (R.NONE_SKIPPED, tally(success=1, failed=1), D.RUN),
        (R.NONE_SKIPPED, tally(skipped=1, pending=1), D.SKIP),
        (R.ALWAYS, tally(pending=3), D.RUN),
    ],
)
def test_rule_table(rule: TriggerRule, t: UpstreamTally, expected: Decision) -> None:
    assert decide(rule, t) == expected


counts = st.integers(min_value=0, max_value=4)


@given(st.sampled_from(list(R)), counts, counts, counts, counts)
def test_every_rule_decides_once_upstream_is_done(rule: TriggerRule, s: int, f: int, uf: int, sk: int) -> None:
    t = tally(s, f, uf, sk)
    assert decide(rule, t) != D.WAIT


@given(st.sampled_from(list(R)), counts, counts, counts, counts, st.integers(min_value=1, max_value=3))
def test_an_early_decision_to_run_or_not_never_flips(
    rule: TriggerRule, s: int, f: int, uf: int, sk: int, pending: int
) -> None:
    """A task decided before all its upstream finished would get the same run/not-run answer
    later (which of skipped/upstream_failed it gets may depend on the order, as in Airflow)."""
    early = decide(rule, tally(s, f, uf, sk, pending))
    if early == D.WAIT:
        return
    for extra in ("success", "failed", "upstream_failed", "skipped"):
        later = tally(s, f, uf, sk, pending)
        setattr(later, extra, getattr(later, extra) + pending)
        assert (decide(rule, later) == D.RUN) == (early == D.RUN), (rule, extra)


@given(counts, counts, counts)
def test_all_success_never_runs_after_a_failure(s: int, pending: int, f: int) -> None:
    decision = decide(R.ALL_SUCCESS, tally(success=s, failed=f + 1, pending=pending))
    assert decision == D.UPSTREAM_FAILED


def test_unknown_rule_suggests_a_name() -> None:
    with pytest.raises(DefinitionError, match="Did you mean .*'all_success'"):
        TriggerRule.parse("all_sucess", where="task 'x'")
