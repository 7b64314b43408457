"""Whole runs in-process: retries, trigger rules, branching, short circuits, operators, templates."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ductwork import (
    BaseOperator,
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    FailNow,
    Flow,
    PythonOperator,
    ShortCircuitOperator,
    SkipTask,
    TaskGroup,
)
from ductwork.core.clock import FrozenClock, SystemClock
from ductwork.testing import run_flow, run_task


def flaky(fail_times: int) -> object:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise ValueError(f"attempt {calls['n']} failed")
        return "ok"

    return fn


def test_fails_twice_then_succeeds_with_two_retries() -> None:
    with Flow("r") as f:
        PythonOperator(task_id="t", python_callable=flaky(2), retries=2, retry_delay=60)
    clock = FrozenClock("2024-01-01T00:00:00+00:00")
    result = run_flow(f, clock=clock)
    tries = result["t"].tries
    assert result.state == "success"
    assert [t.state.value for t in tries] == ["up_for_retry", "up_for_retry", "success"]
    assert [t.error for t in tries[:2]] == ["ValueError: attempt 1 failed", "ValueError: attempt 2 failed"]
    assert clock.now() - dt.datetime(2024, 1, 1, tzinfo=dt.UTC) >= dt.timedelta(seconds=120)


def test_retries_exhausted_fail_the_task_and_block_downstream() -> None:
    with Flow("r") as f:
        t = PythonOperator(task_id="t", python_callable=flaky(5), retries=1, retry_delay=1)
        t >> EmptyOperator(task_id="after")
    result = run_flow(f)
    assert result.state == "failed"
    assert [x.state.value for x in result["t"].tries] == ["up_for_retry", "failed"]
    assert result["after"].state == "upstream_failed"


def test_exponential_backoff_is_capped() -> None:
    with Flow("r") as f:
        PythonOperator(
            task_id="t",
            python_callable=flaky(3),
            retries=3,
            retry_delay=10,
            retry_exponential_backoff=True,
            max_retry_delay=25,
        )
    result = run_flow(f, clock=FrozenClock())
    starts = [t.started_at for t in result["t"].tries]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    # As in Airflow: at least delay * 2 ** (n - 1), less than twice that, capped.
    assert 10 <= gaps[0] < 20 and 20 <= gaps[1] <= 25 and gaps[2] == 25, gaps


def test_tasks_failing_together_retry_spread_out() -> None:
    """With exponential backoff, tasks that fail at the same instant (the database went away
    under all of them) do not all come back at one instant, as Airflow spreads them."""
    with Flow("r") as f:
        for i in range(8):
            PythonOperator(
                task_id=f"t{i}", python_callable=flaky(1), retries=1, retry_delay=60, retry_exponential_backoff=True
            )
    result = run_flow(f, clock=FrozenClock())
    gaps = {(r.tries[1].started_at - r.tries[0].started_at).total_seconds() for r in result.tasks.values()}
    assert all(60 <= g < 120 for g in gaps) and len(gaps) > 1, gaps


def test_fail_now_skips_remaining_retries() -> None:
    def give_up() -> None:
        raise FailNow("bad credentials")

    with Flow("r") as f:
        PythonOperator(task_id="t", python_callable=give_up, retries=5)
    result = run_flow(f)
    assert len(result["t"].tries) == 1 and "bad credentials" in (result["t"].tries[0].error or "")


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("all_success", "upstream_failed"),
        ("all_done", "success"),
        ("one_success", "success"),
        ("one_failed", "success"),
        ("none_failed", "upstream_failed"),
        ("all_failed", "skipped"),
        ("always", "success"),
    ],
)
def test_trigger_rules_end_to_end(rule: str, expected: str) -> None:
    def boom() -> None:
        raise RuntimeError("x")

    with Flow("tr") as f:
        good = EmptyOperator(task_id="good")
        bad = PythonOperator(task_id="bad", python_callable=boom)
        [good, bad] >> EmptyOperator(task_id="target", trigger_rule=rule)
    assert run_flow(f)["target"].state == expected


def test_branching_skips_the_other_path_and_join_runs() -> None:
    with Flow("b") as f:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: ["left"])
        left, right = EmptyOperator(task_id="left"), EmptyOperator(task_id="right")
        after_right = EmptyOperator(task_id="after_right")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        pick >> [left, right]
        right >> after_right
        [left, after_right] >> join
    result = run_flow(f)
    assert result.task_states == {
        "pick": "success",
        "left": "success",
        "right": "skipped",
        "after_right": "skipped",
        "join": "success",
    }


def test_a_join_right_after_the_branch_waits_for_the_followed_branch_instead_of_being_skipped() -> None:
    """Airflow's "empty branch": ``pick >> [left, join]; left >> join``. Following ``left`` keeps
    ``join`` (it is below ``left``); a task below only the branch not taken is still skipped."""
    with Flow("b") as f:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: "left")
        left, join = EmptyOperator(task_id="left"), EmptyOperator(task_id="join")
        other, other_join = EmptyOperator(task_id="other"), EmptyOperator(task_id="other_join")
        pick >> [left, join, other, other_join]
        left >> join
        other >> other_join
    result = run_flow(f)
    assert result.task_states == {
        "pick": "success",
        "left": "success",
        "join": "success",
        "other": "skipped",
        "other_join": "skipped",
    }
    assert result["join"].tries  # it ran, after left
    assert result["join"].tries[0].started_at >= result["left"].tries[0].ended_at


def test_branch_to_unknown_task_fails_with_the_choices() -> None:
    with Flow("b") as f:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: "nowhere")
        pick >> EmptyOperator(task_id="a")
    result = run_flow(f)
    assert "chose 'nowhere', which is not directly downstream" in (result["pick"].tries[0].error or "")


def test_short_circuit_skips_everything_below_or_only_direct() -> None:
    def build(ignore: bool) -> Flow:
        with Flow("s") as f:
            gate = ShortCircuitOperator(
                task_id="gate", python_callable=lambda: False, ignore_downstream_trigger_rules=ignore
            )
            a = EmptyOperator(task_id="a")
            done = EmptyOperator(task_id="done", trigger_rule="all_done")
            gate >> a >> done
        return f

    assert run_flow(build(True)).task_states["done"] == "skipped"
    assert run_flow(build(False)).task_states["done"] == "success"


def test_skip_task_from_code() -> None:
    def skip() -> None:
        raise SkipTask("nothing today")

    with Flow("s") as f:
        PythonOperator(task_id="t", python_callable=skip) >> EmptyOperator(task_id="after")
    assert run_flow(f).task_states == {"t": "skipped", "after": "skipped"}


def test_bash_operator_env_cwd_output_and_failure(tmp_path: Path) -> None:
    with Flow("bash") as f:
        a = BashOperator(
            task_id="a",
            bash_command='echo "$GREETING from $(pwd)"; echo second line',
            env={"GREETING": "hola"},
            append_env=True,
            cwd=str(tmp_path),
        )
        b = BashOperator(task_id="b", bash_command="echo got: {{ ti.xcom_pull(task_ids='a') }}; exit 4")
        BashOperator(task_id="c", bash_command="exit 99")
        a >> b
    result = run_flow(f)
    assert result.result("a") == "second line"
    assert f"hola from {tmp_path}" in result.logs[("a", 1)]
    assert "got: second line" in result.logs[("b", 1)]
    assert result["b"].tries[0].error == "bash command exited with code 4"
    assert result["c"].state == "skipped"


def test_template_error_names_task_field_and_line() -> None:
    with Flow("tpl") as f:
        BashOperator(task_id="t", bash_command="echo ok\necho {{ nope }}")
    error = run_flow(f)["t"].tries[0].error or ""
    assert error.startswith("task 't', field 'bash_command', line 2: ")
    assert "'nope' is undefined" in error


def test_templates_see_run_context() -> None:
    with Flow("ctx", schedule="@daily", params={"who": "team"}) as f:
        BashOperator(task_id="t", bash_command="echo {{ ds }} {{ params.who }} {{ macros.ds_add(ds, 1) }}")
    result = run_flow(f, logical_date=dt.datetime(2024, 2, 28, tzinfo=dt.UTC), params={"who": "ops"})
    assert result.result("t") == "2024-02-28 ops 2024-02-29"


def test_callbacks_run_on_success_retry_and_failure() -> None:
    seen: list[str] = []

    def fail() -> None:
        raise RuntimeError("no")

    with Flow("cb") as f:
        PythonOperator(task_id="ok", python_callable=lambda: 1, on_success_callback=lambda c: seen.append("ok"))
        PythonOperator(
            task_id="bad",
            python_callable=fail,
            retries=1,
            retry_delay=0,
            on_retry_callback=lambda c: seen.append("retry"),
            on_failure_callback=lambda c: seen.append(f"failure:{c['exception']}"),
        )
    run_flow(f)
    assert sorted(seen) == ["failure:no", "ok", "retry"]


def test_execution_timeout_stops_a_bash_task() -> None:
    with Flow("to") as f:
        BashOperator(task_id="slow", bash_command="sleep 30", execution_timeout=0.5)
    started = time.monotonic()
    result = run_flow(f, clock=SystemClock())
    assert time.monotonic() - started < 10
    assert result["slow"].state == "failed"
    assert result["slow"].tries[0].error == "timed out after 0.5s"


def test_workers_run_independent_tasks_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=10)

    def meet() -> str:
        barrier.wait()
        return "met"

    with Flow("par") as f:
        for i in range(3):
            PythonOperator(task_id=f"t{i}", python_callable=meet)
    result = run_flow(f, workers=3, clock=SystemClock())
    assert result.state == "success"


def test_run_one_task_with_upstream_results() -> None:
    with Flow("one") as f:
        a = PythonOperator(task_id="a", python_callable=lambda: 1)
        with TaskGroup("g"):
            PythonOperator(task_id="b", python_callable=lambda x: x * 10, op_args=[a.output])
    outcome = run_task(f, "g.b", upstream_results={"a": 7})
    assert outcome.state == "success" and outcome.result == 70


def test_rendered_arguments_are_recorded_as_plain_data() -> None:
    with Flow("rendered") as f:
        a = PythonOperator(task_id="a", python_callable=lambda: 1)
        PythonOperator(
            task_id="b", python_callable=lambda x, when: x, op_args=[a.output], op_kwargs={"when": "{{ ds }}"}
        )
    result = run_flow(f, logical_date="2024-03-01T00:00:00+00:00")
    rendered = result["b"].tries[0].rendered
    assert rendered["op_args"] == ["{{ ti.xcom_pull(task_ids='a', key='return_value') }}"]
    assert rendered["op_kwargs"] == {"when": "2024-03-01"}


def test_a_long_task_does_not_hold_back_the_other_branches() -> None:
    """Short tries run one after another in the run loop's thread; when one of them turns out
    long, the other branches go on in the worker threads meanwhile (here the long task waits
    for the other branch's last task, so holding that branch back would never end)."""
    chain_done = threading.Event()

    def wait_for_chain() -> bool:
        return chain_done.wait(timeout=20)

    with Flow("branches") as f:
        PythonOperator(task_id="a_waits", python_callable=wait_for_chain)
        previous = None
        for i in range(5):
            op = PythonOperator(task_id=f"c{i}", python_callable=lambda: None)
            if previous is not None:
                previous >> op
            previous = op
        previous >> PythonOperator(task_id="last", python_callable=chain_done.set)
    started = time.monotonic()
    result = run_flow(f, workers=2, clock=SystemClock())
    assert result.state == "success"
    assert result.result("a_waits") is True
    assert time.monotonic() - started < 15


def test_tries_that_wait_overlap_in_the_threads_after_short_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short tries side by side run in the loop's thread (threads would only take turns on
    the GIL, at the cost of a hand-over each); later tries of the same function wait, and
    still run side by side: three of them meet at a barrier. What counts as short is widened
    here (2 ms, and 0.5 ms off the CPU, were met now and then by a no-op on a busy machine)."""
    from ductwork.engine.executors import inline

    monkeypatch.setattr(inline, "INLINE_LIMIT", 0.1)
    monkeypatch.setattr(inline, "WAIT_LIMIT", 0.05)
    barrier = threading.Barrier(3, timeout=10)
    names: dict[int, str] = {}

    def work(i: int) -> str:
        names[i] = threading.current_thread().name
        if i >= 20:
            barrier.wait()
        return "done"

    with Flow("mixed") as f:
        middle = EmptyOperator(task_id="middle")
        for i in range(20):  # side by side, each short
            PythonOperator(task_id=f"s{i}", python_callable=work, op_args=[i]) >> middle
        for i in range(20, 23):
            middle >> PythonOperator(task_id=f"w{i}", python_callable=work, op_args=[i])
    result = run_flow(f, workers=3, clock=SystemClock())
    assert result.state == "success", {t: r.state for t, r in result.tasks.items()}
    assert {names[i] for i in range(20)} == {threading.main_thread().name}
    assert len({names[i] for i in range(20, 23)}) == 3


class _Collects(BaseOperator):
    """Appends to its templated containers as it runs (a task must not change its definition)."""

    template_fields = ("items", "options", "nothing")

    def __init__(self, *, items: list[str], options: dict[str, str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.items, self.options, self.nothing = items, options, None

    def execute(self, context: object) -> list[object]:
        seen = [list(self.items), dict(self.options), self.nothing]
        self.items.append("ran")
        self.options["ran"] = "yes"
        return seen


def test_a_try_that_changes_its_templated_fields_leaves_the_definition_as_it_was() -> None:
    with Flow("collects") as flow:
        _Collects(task_id="empty", items=[], options={})
        _Collects(task_id="full", items=["{{ ds }}"], options={"k": "v"})
    for _ in range(2):
        summary = run_flow(flow)
        assert summary.state == "success"
        assert summary.result("empty") == [[], {}, None]
        assert summary.result("full")[1:] == [{"k": "v"}, None]
    assert flow.tasks["empty"].items == [] and flow.tasks["empty"].options == {}
    assert flow.tasks["full"].items == ["{{ ds }}"] and flow.tasks["full"].options == {"k": "v"}


def test_no_more_tries_run_at_once_than_workers_when_the_loop_thread_runs_one() -> None:
    """The first try runs in the loop's thread and, running long, hands the rest to the threads:
    those wait for a turn, so ``--workers 2`` means two at a time (it was three)."""
    lock = threading.Lock()
    running = [0]
    most = [0]

    def work() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1

    with Flow("wide") as f:
        for i in range(6):
            PythonOperator(task_id=f"t{i}", python_callable=work)
    result = run_flow(f, workers=2, clock=SystemClock())
    assert result.state == "success"
    assert most[0] == 2


def test_a_timeout_holds_while_another_try_runs_long() -> None:
    """A try with a timeout runs in a thread; the loop's thread must not take a long try
    meanwhile, or nothing stops the first at its deadline (Luigi's worker_timeout was ignored)."""
    ends: list[str] = []

    def slow() -> None:
        time.sleep(1.5)
        ends.append("slow ended")

    with Flow("both") as f:
        PythonOperator(task_id="bounded", python_callable=slow, execution_timeout=0.3)
        PythonOperator(task_id="long", python_callable=lambda: time.sleep(2.5))  # outlasts "bounded"
    result = run_flow(f, workers=2, clock=SystemClock())
    assert result.task_states == {"bounded": "failed", "long": "success"}
    assert result["bounded"].tries[-1].error == "timed out after 0.3s"
    assert ends == []  # stopped at its deadline, not left to finish


def test_a_timed_out_try_stops_before_its_retry_runs_even_when_it_catches_exception() -> None:
    """Its thread is made to raise at the timeout: the first try's code does not go on beside
    the second (both wrote to the same table), whatever ``except Exception`` it has."""
    ticks: list[tuple[int, int]] = []

    def work(ti: Any) -> None:
        number = ti.try_number
        for i in range(30):
            try:
                ticks.append((number, i))
                time.sleep(0.1)
            except Exception:  # a task that swallows its errors must still stop
                pass

    with Flow("retried") as f:
        PythonOperator(task_id="slow", python_callable=work, execution_timeout=0.5, retries=1, retry_delay=0)
    result = run_flow(f, clock=SystemClock())
    time.sleep(0.5)  # what the first try would write after the second began
    assert result.task_states == {"slow": "failed"}
    second_began = ticks.index((2, 0))
    assert all(number == 2 for number, _ in ticks[second_began:]), ticks
    assert max(i for number, i in ticks if number == 1) < 10


def test_a_try_past_its_timeout_whose_code_never_returns_does_not_hold_the_run() -> None:
    """Python code in a thread cannot be stopped: the try is reported failed at its timeout and
    the run ends without waiting for the thread (it waited for ever)."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            time.sleep(0.05)

    with Flow("spins") as f:
        PythonOperator(task_id="spin", python_callable=spin, execution_timeout=0.5)
        PythonOperator(task_id="other", python_callable=lambda: "done")
    began = time.monotonic()
    result = run_flow(f, clock=SystemClock())
    try:
        assert time.monotonic() - began < 20
        assert result.task_states == {"spin": "failed", "other": "success"}
        assert result["spin"].tries[-1].error == "timed out after 0.5s"
        duration = result["spin"].tries[-1].duration  # from its real start (it said 0.00s)
        assert duration is not None and duration >= 0.45
    finally:
        stop.set()


def test_a_try_blocked_in_one_call_past_its_timeout_gets_its_callbacks_once() -> None:
    """A thread blocked in one long call (a socket read, a lock) raises only when the call
    returns: its ``on_retry``/``on_failure`` callbacks ran then, after the run had ended, or
    never (the process exited first). They run at the timeout, once each try."""
    release = threading.Event()
    heard: list[str] = []

    def blocked() -> None:
        release.wait(30)  # one C call: no Python instruction runs until it returns

    def on_retry(context: Any) -> None:
        heard.append(f"retry {context['ti'].try_number} {context['exception']}")

    def on_failure(context: Any) -> None:
        heard.append(f"failure {context['ti'].try_number} {context['exception']}")

    with Flow("blocked") as f:
        PythonOperator(
            task_id="read",
            python_callable=blocked,
            execution_timeout=0.3,
            retries=1,
            retry_delay=0,
            on_retry_callback=on_retry,
            on_failure_callback=on_failure,
        )
    began = time.monotonic()
    try:
        result = run_flow(f, clock=SystemClock())
        assert time.monotonic() - began < 20
        assert result.task_states == {"read": "failed"}
        assert heard == ["retry 1 timed out after 0.3s", "failure 2 timed out after 0.3s"]
    finally:
        release.set()
    time.sleep(0.3)  # the threads' calls return now: their interruption runs no callback again
    assert heard == ["retry 1 timed out after 0.3s", "failure 2 timed out after 0.3s"]


def test_a_task_that_raises_keyboard_interrupt_in_a_thread_fails_like_any_error() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with Flow("interrupts") as f:
        PythonOperator(task_id="kbi", python_callable=interrupt, execution_timeout=30)  # runs in a thread
        PythonOperator(task_id="other", python_callable=lambda: "done")
    result = run_flow(f)
    assert result.task_states == {"kbi": "failed", "other": "success"}
    assert "KeyboardInterrupt" in (result["kbi"].tries[-1].error or "")


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x


def test_a_result_the_store_could_not_keep_fails_its_try_in_process_too() -> None:
    """Under the scheduler such a result fails its try (the worker cannot store it): an
    in-process run and ductwork.testing say the same, so a flow tested here works there."""

    def numbers() -> object:
        return (i for i in range(3))

    with Flow("values") as f:
        PythonOperator(task_id="obj", python_callable=lambda: _Point(3))
        PythonOperator(task_id="gen", python_callable=numbers)
        PythonOperator(task_id="plain", python_callable=lambda: {"when": dt.date(2024, 1, 1), "tags": {"a"}})
    result = run_flow(f)
    assert result.task_states == {"obj": "failed", "gen": "failed", "plain": "success"}
    assert "result 'return_value' cannot be stored with the 'json' serializer" in (result["obj"].tries[-1].error or "")
    assert result.result("plain") == {"when": dt.date(2024, 1, 1), "tags": {"a"}}


def test_sys_exit_zero_is_a_success_and_other_codes_fail_as_in_airflow() -> None:
    import sys

    with Flow("exits") as f:
        PythonOperator(task_id="zero", python_callable=lambda: sys.exit(0), retries=2, retry_delay=0)
        PythonOperator(task_id="bare", python_callable=lambda: sys.exit(), retries=2, retry_delay=0)
        PythonOperator(task_id="three", python_callable=lambda: sys.exit(3))
    result = run_flow(f)
    assert result.task_states == {"zero": "success", "bare": "success", "three": "failed"}
    assert len(result["zero"].tries) == 1


def test_sys_exit_in_a_callback_leaves_the_tries_outcome_as_it_was() -> None:
    import sys

    def leave(context: Any) -> None:
        sys.exit(1)

    with Flow("callbacks") as f:
        PythonOperator(task_id="ok", python_callable=lambda: "fine", on_success_callback=leave)
        PythonOperator(task_id="bad", python_callable=lambda: 1 / 0, on_failure_callback=leave)
    result = run_flow(f)
    assert result.task_states == {"ok": "success", "bad": "failed"}
    assert "ZeroDivisionError" in (result["bad"].tries[-1].error or "")


def test_a_branch_may_choose_a_task_group_by_its_id() -> None:
    # As in Airflow, choosing a group follows its first tasks; it failed the branch with
    # "chose 'grp', which is not directly downstream of it".
    with Flow("branch_to_group") as f:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: ["grp", "a"])
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        with TaskGroup("grp") as grp:
            first = PythonOperator(task_id="first", python_callable=lambda: 1)
            second = PythonOperator(task_id="second", python_callable=lambda: 2)
            first >> second
        with TaskGroup("other") as other:
            EmptyOperator(task_id="x")
        pick >> [a, b, grp, other]
    result = run_flow(f)
    states = {t: result[t].state.value for t in ("pick", "a", "b", "grp.first", "grp.second", "other.x")}
    assert states == {
        "pick": "success",
        "a": "success",
        "b": "skipped",
        "grp.first": "success",
        "grp.second": "success",
        "other.x": "skipped",
    }
