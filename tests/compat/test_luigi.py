"""Luigi modules under the shim: the ``luigi`` command and ``python -m luigi``, exit codes,
the execution summary, task ids, missing external data, dynamic requirements, retry_count."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ductwork

MODULES = Path(__file__).parent / "luigi_modules"
PYTHONPATH = os.pathsep.join([str(MODULES), str(Path(ductwork.__file__).parents[1])])
"""The example modules, and the ductwork this test imported (not whichever one is installed)."""
LUIGI = str(Path(sys.executable).parent / "luigi")


def _run(cmd: list[str], tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DUCTWORK_COMPAT", "LUIGI_CONFIG"))},
        "PYTHONPATH": PYTHONPATH,
        "NUMBERS_OUT": str(tmp_path / "out"),
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        **extra_env,
    }
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _raw(tmp_path: Path, day: str, words: str) -> None:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / f"raw-{day}.txt").write_text(words)


def test_luigi_command_builds_a_week_and_prints_the_summary(tmp_path: Path) -> None:
    for day in range(4, 11):
        _raw(tmp_path, f"2024-03-{day:02d}", "a b c")
    proc = _run(
        [LUIGI, "--module", "numbers_pipeline", "Week", "--week", "2024-W10", "--scale", "2", "--local-scheduler"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "count-2024-03-06-2.json").read_text()) == {"day": "2024-03-06", "words": 6}
    assert "Scheduled 15 tasks of which:" in proc.stderr
    assert "* 7 complete ones were encountered:" in proc.stderr
    assert "* 8 ran successfully:" in proc.stderr
    assert "This progress looks :) because there were no failed tasks or missing dependencies" in proc.stderr
    again = _run(
        [
            sys.executable,
            "-m",
            "luigi",
            "--module",
            "numbers_pipeline",
            "Week",
            "--week",
            "2024-W10",
            "--scale",
            "2",
            "--local-scheduler",
        ],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "* 1 complete ones were encountered:" in again.stderr  # the wrapper: everything is done


def test_missing_external_data_is_pending_and_sets_the_missing_data_code(tmp_path: Path) -> None:
    _raw(tmp_path, "2024-03-04", "a")
    proc = _run(
        [
            LUIGI,
            "--module",
            "numbers_pipeline",
            "Week",
            "--week",
            "2024-W10",
            "--local-scheduler",
            "--retcode-missing-data",
            "5",
        ],
        tmp_path,
    )
    assert proc.returncode == 5, proc.stderr
    assert "* 6 were missing external dependencies:" in proc.stderr
    assert "* 7 had missing dependencies:" in proc.stderr  # six counts and the week
    assert "- 6 Raw(day=2024-03-05...2024-03-10)" in proc.stderr
    assert "This progress looks :| because there were missing external dependencies" in proc.stderr
    assert (tmp_path / "out" / "count-2024-03-04-1.json").exists()  # what could run, ran


def test_dynamic_requirements_and_retry_count(tmp_path: Path) -> None:
    proc = _run([LUIGI, "--module", "numbers_pipeline", "SumOfSquares", "--upto", "4", "--local-scheduler"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "sum-4.txt").read_text() == "30"
    assert "Scheduled 5 tasks of which:\n* 5 ran successfully:" in proc.stderr  # with the yielded squares
    flaky = _run(
        [
            LUIGI,
            "--module",
            "numbers_pipeline",
            "Flaky",
            "--marker",
            "x",
            "--local-scheduler",
            "--scheduler-retry-delay",
            "0",
            "--retcode-task-failed",
            "3",
        ],
        tmp_path,
    )
    assert flaky.returncode == 0, flaky.stderr
    assert (tmp_path / "out" / "flaky-x.txt").read_text() == "ok after 2"
    assert "failed and then succeeded" in flaky.stderr


def test_failure_exit_code_and_unknown_parameter(tmp_path: Path) -> None:
    bad = _run([LUIGI, "--module", "numbers_pipeline", "Square", "--nn", "3", "--local-scheduler"], tmp_path)
    assert bad.returncode == 2  # a command-line error, as argparse exits for Luigi
    assert "unknown parameter --nn" in bad.stderr and "Did you mean" in bad.stderr
    no_value = _run([LUIGI, "--module", "numbers_pipeline", "Square", "--n", "--local-scheduler"], tmp_path)
    assert no_value.returncode == 2, no_value.stderr  # argparse's "expected one argument" for Luigi
    assert no_value.stderr.strip().splitlines()[-1] == "luigi: error: --n needs a value"


def test_an_unknown_task_or_module_exits_1_as_from_luigi(tmp_path: Path) -> None:
    # Luigi's parser imports --module and looks the task up before its [retcode] handling:
    # exit status 1, not unhandled_exception's 4, and the tasks there are are named.
    typo = _run([LUIGI, "--module", "numbers_pipeline", "Weak", "--local-scheduler"], tmp_path)
    assert typo.returncode == 1, typo.stderr
    assert "No task Weak. Did you mean:\nWeek" in typo.stderr
    unknown = _run([LUIGI, "--module", "numbers_pipeline", "Xyzzy", "--local-scheduler"], tmp_path)
    assert unknown.returncode == 1 and "No task Xyzzy. Candidates are: " in unknown.stderr
    assert ",Week," in unknown.stderr
    module = _run([LUIGI, "--module", "no_such_module", "Week", "--local-scheduler"], tmp_path)
    assert module.returncode == 1 and "No module named 'no_such_module'" in module.stderr


def test_task_ids_carry_the_parameter_hash() -> None:
    code = (
        "import luigi, numbers_pipeline as m\n"
        "t = m.Count(day=m.TODAY, scale=3)\n"
        "print(t.task_id); print(repr(t)); print(t is m.Count(m.TODAY, 3))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        capture_output=True,
        text=True,
        timeout=60,
    )
    task_id, text, same = proc.stdout.split("\n")[:3]
    assert task_id.startswith("Count_2024_03_04_3_"), proc.stderr  # Luigi's format: family, values, hash
    assert len(task_id.rsplit("_", 1)[1]) == 10
    assert text == "Count(day=2024-03-04, scale=3)"
    assert same == "True"


@pytest.mark.parametrize("runner", ["build", "run"])
def test_build_and_run_return_values(tmp_path: Path, runner: str) -> None:
    call = (
        "luigi.build([m.Square(n=3), m.Count(day=m.TODAY)], local_scheduler=True)"
        if runner == "build"
        else "luigi.run(['Count', '--day', '2024-03-04', '--local-scheduler'])"
    )
    code = f"import luigi, numbers_pipeline as m\nprint({call})\n"
    proc = _run([sys.executable, "-c", code], tmp_path)
    # The external input of Count is missing: scheduling succeeded and nothing failed (True),
    # as Luigi reports it; the exit code of the command line is what flags missing data.
    assert proc.stdout.strip() == "True", proc.stderr
    assert "were missing external dependencies" in proc.stderr or runner == "build"
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_get_params_gives_luigi_name_parameter_pairs() -> None:
    code = (
        "import luigi\n"
        "class Report(luigi.Task):\n"
        "    day = luigi.DateParameter()\n"
        "    scale = luigi.IntParameter(default=1)\n"
        "    label = luigi.Parameter(default='x', positional=False)\n"
        "pairs = Report.get_params()\n"
        "print([name for name, _ in pairs], [type(p).__name__ for _, p in pairs])\n"
        "print(pairs[0][1] is Report.day, sorted(dict(Report.get_params())))\n"
        "print(Report('2024-03-04', 3).scale, Report.get_param_names())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "['day', 'scale', 'label'] ['DateParameter', 'IntParameter', 'Parameter']", proc.stderr
    assert lines[1] == "True ['day', 'label', 'scale']"
    assert lines[2] == "3 ['day', 'scale', 'label']"


def test_a_failing_dynamic_requirement_fails_the_build(tmp_path: Path) -> None:
    cmd = [LUIGI, "--module", "dynamic_failures", "Parent", "--local-scheduler", "--retcode-task-failed", "30"]
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 30, proc.stderr
    assert "Scheduled 2 tasks of which:" in proc.stderr
    assert "* 1 failed:\n    - 1 Bad()" in proc.stderr
    assert "* 1 had failed dependencies:\n        - 1 Parent(which=bad)" in proc.stderr
    assert "This progress looks :( because there were failed tasks" in proc.stderr
    code = "import luigi, dynamic_failures as m\nprint(luigi.build([m.Parent()], local_scheduler=True))\n"
    assert _run([sys.executable, "-c", code], tmp_path).stdout.strip() == "False"


def test_missing_dynamic_external_data_is_reported_missing(tmp_path: Path) -> None:
    cmd = [LUIGI, "--module", "dynamic_failures", "Parent", "--which", "missing", "--local-scheduler"]
    proc = _run([*cmd, "--retcode-missing-data", "5"], tmp_path)
    assert proc.returncode == 5, proc.stderr
    assert "* 1 were missing external dependencies:\n        - 1 Missing()" in proc.stderr
    assert "This progress looks :| because there were missing external dependencies" in proc.stderr


def _runs(tmp_path: Path, family: str) -> int:
    log = tmp_path / "out" / f"runs-{family}.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize(("options", "once", "thrice"), [([], 1, 1), (["--scheduler-retry-delay", "0"], 1, 3)])
def test_retry_count_is_the_number_of_runs_as_in_luigi(
    tmp_path: Path, options: list[str], once: int, thrice: int
) -> None:
    # A Luigi worker runs a failed task again only when the retry delay is 0 (or it is kept
    # alive), and then until retry_count runs have failed (verified with Luigi 3.8.1).
    proc = _run([LUIGI, "--module", "always_failing", "Both", "--local-scheduler", *options], tmp_path)
    assert "* 2 failed:" in proc.stderr, proc.stderr
    assert (_runs(tmp_path, "Once"), _runs(tmp_path, "Thrice")) == (once, thrice)


def test_status_messages_and_progress_of_a_running_task_are_logged(tmp_path: Path) -> None:
    proc = _run([LUIGI, "--module", "reporting", "Report", "--local-scheduler"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "* 1 ran successfully:" in proc.stderr
    assert "Report() status message: halfway there" in proc.stderr
    assert "Report() progress: 50%" in proc.stderr
    assert "Report() tracking URL: http://tracker/job/1" in proc.stderr


def test_help_prints_the_usage_and_runs_nothing(tmp_path: Path) -> None:
    _raw(tmp_path, "2024-03-04", "a b")
    proc = _run([LUIGI, "--module", "numbers_pipeline", "Count", "--day", "2024-03-04", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage: luigi [--local-scheduler] [--module CORE_MODULE] [--help] [--help-all]" in proc.stdout
    assert "  --day DAY\n" in proc.stdout and "  --Count-scale COUNT_SCALE\n" in proc.stdout
    assert "Execution Summary" not in proc.stderr
    assert not (tmp_path / "out" / "count-2024-03-04-1.json").exists()
    every = _run([LUIGI, "--module", "numbers_pipeline", "Count", "--help-all"], tmp_path)
    assert every.returncode == 0 and "--scheduler-retry-delay" in every.stdout, every.stderr
    alone = _run([LUIGI, "--help"], tmp_path)
    assert alone.returncode == 0 and "--help-all            Show all command line flags" in alone.stdout


def test_namespaces_set_before_the_classes_name_the_tasks(tmp_path: Path) -> None:
    proc = _run([LUIGI, "--module", "spaced", "spaced.Auto", "--local-scheduler"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "* 3 ran successfully:" in proc.stderr, proc.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["ns2.Spaced.txt", "spaced.Auto.txt", "team.Named.txt"]
    again = _run([LUIGI, "--module", "spaced", "ns2.Spaced", "--local-scheduler"], tmp_path)
    assert "* 1 complete ones were encountered:\n    - 1 ns2.Spaced()" in again.stderr, again.stderr


def _most_at_once(tmp_path: Path, family: str) -> int:
    spans = [
        tuple(map(float, line.split())) for line in (tmp_path / "out" / f"spans-{family}.log").read_text().splitlines()
    ]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_resources_from_luigi_cfg_and_process_resources_limit_the_tasks(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "luigi.cfg").write_text("[resources]\ndb = 2\n")
    proc = _run([LUIGI, "--module", "limited", "Queries", "--local-scheduler", "--workers", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "* 6 ran successfully:" in proc.stderr, proc.stderr
    assert _most_at_once(tmp_path, "Query") == 2  # [resources] db = 2, one each
    assert _most_at_once(tmp_path, "BigQuery") == 1  # process_resources() takes both


def test_what_run_prints_reaches_the_terminal(tmp_path: Path) -> None:
    proc = _run([LUIGI, "--module", "reporting", "Report", "--local-scheduler"], tmp_path)
    assert "printed by run()" in proc.stdout, proc.stderr
    code = "import luigi, reporting as m\nluigi.build([m.Report()], local_scheduler=True)\n"
    (tmp_path / "out" / "report.txt").unlink()
    assert "printed by run()" in _run([sys.executable, "-c", code], tmp_path).stdout


@pytest.mark.parametrize("where", ["command line", "luigi.cfg"])
def test_the_worker_timeout_setting_stops_a_task_that_runs_too_long(tmp_path: Path, where: str) -> None:
    # `--worker-timeout 1` or `[worker] timeout = 1` (Luigi's worker applies it to every task
    # without its own worker_timeout): the task fails, saying so, and the build ends.
    extra = ["--worker-timeout", "1"] if where == "command line" else []
    if where == "luigi.cfg":
        (tmp_path / "luigi.cfg").write_text("[worker]\ntimeout = 1\n")
    started = time.monotonic()
    proc = _run([LUIGI, "--module", "waiting", "Wait", "--local-scheduler", *extra], tmp_path)
    assert time.monotonic() - started < 30
    assert "Task Wait__99914b932b timed out and was terminated" in proc.stderr
    assert "* 1 failed:" in proc.stderr and not (tmp_path / "out" / "waited.txt").exists()


def test_every_worker_option_of_luigi_is_taken_and_check_complete_on_run_applies(tmp_path: Path) -> None:
    # A task whose run() leaves its output unwritten fails under check_complete_on_run, as in
    # Luigi; luigid's options on a --local-scheduler line are accepted, as Luigi accepts them.
    (tmp_path / "forgetful.py").write_text(
        "import luigi\n"
        "class Forgetful(luigi.Task):\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('never-written.txt')\n"
        "    def run(self):\n"
        "        pass\n"
    )
    (tmp_path / "luigi.cfg").write_text("[worker]\ncheck_complete_on_run = true\n")
    cmd = [LUIGI, "--module", "forgetful", "Forgetful", "--local-scheduler", "--worker-wait-interval", "0.5"]
    proc = _run([*cmd, "--worker-ping-interval", "2", "--scheduler-remove-delay", "5"], tmp_path)
    assert "unknown parameter" not in proc.stderr, proc.stderr
    assert "Task finished running, but complete() is still returning false." in proc.stderr
    assert "* 1 failed:" in proc.stderr
    (tmp_path / "luigi.cfg").write_text("[core]\nworker-timeout = 1\n")  # Luigi's older spelling
    assert core_alias_timeout(tmp_path) == 1


def core_alias_timeout(tmp_path: Path) -> int:
    code = "import luigi.worker\nprint(luigi.worker.worker().timeout)\n"
    return int(_run([sys.executable, "-c", code], tmp_path).stdout.strip())


def test_a_second_invocation_under_the_lock_says_who_holds_it(tmp_path: Path) -> None:
    cmd = [LUIGI, "--module", "waiting", "Wait", "--local-scheduler"]
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "NUMBERS_OUT": str(tmp_path / "out"), "TMPDIR": str(tmp_path)}
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if (tmp_path / "out" / "started").exists():
                break
            time.sleep(0.1)
        second = _run(cmd, tmp_path)
        assert f"Pid(s) {{{first.pid}}} already running" in second.stdout, second.stderr
        assert "Execution Summary" not in second.stderr
    finally:
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / "release").touch()
        first.wait(timeout=60)


def _started(tmp_path: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(1500):
        if (tmp_path / "out" / f"started-{proc.pid}").exists() or proc.poll() is not None:
            return
        time.sleep(0.02)


def test_take_lock_tells_the_holder_to_stop_taking_tasks_and_runs_beside_it(tmp_path: Path) -> None:
    """Luigi's --take-lock sends the holder SIGUSR1: it finishes its running task, runs no other
    ("not granted run permission", the not_run exit code), and the newcomer runs the rest. The
    newcomer was refused ("already running") and the signal killed a build outright."""
    (tmp_path / "luigi.cfg").write_text("[retcode]\nnot_run = 3\n")
    cmd = [LUIGI, "--module", "handing", "Second", "--local-scheduler", "--take-lock"]
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "NUMBERS_OUT": str(tmp_path / "out"), "TMPDIR": str(tmp_path)}
    popen = {"cwd": tmp_path, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    first = subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]
    try:
        _started(tmp_path, first)
        second = subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]
        _started(tmp_path, second)
    finally:
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / "release").touch()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 3, err  # [retcode] not_run, not -SIGUSR1
    assert "* 1 was not granted run permission by the scheduler:" in err and "- 1 Second()" in err
    assert "This progress looks :| because there were tasks that were not granted run permission" in err
    told, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert f"Sent kill signal to Pids: {{{first.pid}}}" in told
    assert (tmp_path / "out" / "second.txt").read_text() == str(second.pid)


def test_send_error_email_from_a_failure_handler_reaches_the_receivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``luigi.notifications.send_error_email`` (and ``format_task_error``), which modules call
    from their failure handlers, did not exist; Luigi sends to ``[email] receiver`` and the
    additional recipients (comma-separated too), the subject after ``[email] prefix``."""
    pytest.importorskip("aiosmtpd")
    from tests.integrations.test_email import Mailbox, _free_port, _start

    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    (tmp_path / "home").mkdir()
    (tmp_path / "luigi.cfg").write_text("[email]\nreceiver = ops@example.com\nprefix = [etl]\n")
    monkeypatch.setenv("DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{mailbox.port}")
    try:
        proc = _run([LUIGI, "--module", "mailing", "Boom", "--local-scheduler"], tmp_path)
    finally:
        controller.stop()
    assert "This progress looks :( because there were failed tasks" in proc.stderr
    [(recipients, message)] = [m for m in mailbox.messages if "FAILED. Host:" not in m[1]["Subject"]]
    assert recipients == ["ops@example.com", "dev@example.com", "lead@x.org"], proc.stderr
    assert message["Subject"] == "[etl] Boom(day=2024-03-01) failed"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "A load failed\n\nName: Boom\n\nParameters:\n  day: 2024-03-01\n" in text and "disk full" in text


def _tty_run(cmd: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``_run`` with the standard output on a terminal (a pseudo-terminal), as a person at a shell."""
    import pty

    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DUCTWORK_COMPAT", "LUIGI_CONFIG"))}
        env |= {"PYTHONPATH": PYTHONPATH, "DUCTWORK_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, stdout=follower, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(follower)
        os.close(leader)
    return proc


@pytest.mark.parametrize("command", ["luigi", "build"])
def test_a_failed_task_sends_luigis_failure_email_through_the_smtp_section(tmp_path: Path, command: str) -> None:
    """With ``[email] receiver`` set, Luigi's worker e-mails every failed task (to the receiver
    and the task's ``owner_email``, through ``[smtp] host``/``port``); under the shim nothing was
    sent unless a failure handler of the module's own called ``send_error_email``. Not from a
    terminal (unless ``force_send``), and not with ``[worker] send_failure_email = false``."""
    pytest.importorskip("aiosmtpd")
    from tests.integrations.test_email import Mailbox, _free_port, _start

    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    (tmp_path / "home").mkdir()
    config = f"[email]\nreceiver = ops@example.com\nprefix = [etl]\n[smtp]\nhost = 127.0.0.1\nport = {mailbox.port}\n"
    (tmp_path / "luigi.cfg").write_text(config)
    cmd = [LUIGI, "--module", "failure_mail", "Load", "--local-scheduler"]
    if command == "build":
        cmd = [sys.executable, "-m", "ductwork.cli", "build", "--module", "failure_mail", "Load", "--no-progress"]
    try:
        proc = _run(cmd, tmp_path)
        from_a_terminal = _tty_run(cmd, tmp_path)
        (tmp_path / "luigi.cfg").write_text(config.replace("[email]\n", "[email]\nforce_send = true\n"))
        forced = _tty_run(cmd, tmp_path)
        (tmp_path / "luigi.cfg").write_text(config + "[worker]\nsend_failure_email = false\n")
        switched_off = _run(cmd, tmp_path)
    finally:
        controller.stop()
    assert all("failed" in run.stdout + run.stderr for run in (proc, switched_off))  # the runs ended
    assert "running from a tty" in from_a_terminal.stderr or command == "build", from_a_terminal.stderr
    assert len(mailbox.messages) == 2, (proc.stderr, from_a_terminal.stderr, forced.stderr, switched_off.stderr)
    for recipients, message in mailbox.messages:
        assert recipients == ["ops@example.com", "owner@example.com"]
        assert message["Subject"] == f"[etl] Luigi: Load(day=2024-03-01) FAILED. Host: {socket.gethostname()}"
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        assert text.startswith(
            "A task failed when running. Most likely run() raised an exception.\n\nName: Load\n\n"
            "Parameters:\n  day: 2024-03-01\n\nCommand line:\n"
        )
        assert "Runtime error:\nTraceback (most recent call last):" in text and "RuntimeError: disk full" in text


@pytest.mark.parametrize("command", ["luigi", "build"])
def test_dependency_events_fire_while_the_build_is_planned(tmp_path: Path, command: str) -> None:
    cmd = [LUIGI, "--module", "watched", "Digest", "--local-scheduler"]
    if command == "build":
        cmd = [sys.executable, "-m", "ductwork.cli", "build", "--module", "watched", "Digest", "--no-progress"]
    proc = _run(cmd, tmp_path)
    events = (tmp_path / "out" / "events.txt").read_text().splitlines() if (tmp_path / "out").exists() else []
    assert events == ["discovered Digest() -> Feed()", "missing Feed()"], proc.stderr
    assert "Error in event callback" not in proc.stderr  # no run-time event the handlers cannot take


def test_config_path_reads_a_parameter_from_another_section(tmp_path: Path) -> None:
    (tmp_path / "luigi.cfg").write_text("[spark]\nmaster = yarn\n")
    proc = _run([LUIGI, "--module", "configured", "Submit", "--local-scheduler"], tmp_path)
    assert (tmp_path / "out" / "submitted.txt").read_text() == "yarn", proc.stderr
    (tmp_path / "luigi.cfg").write_text("[spark]\nmaster = yarn\n[Submit]\nmaster = mesos\n")
    (tmp_path / "out" / "submitted.txt").unlink()
    proc = _run([LUIGI, "--module", "configured", "Submit", "--local-scheduler"], tmp_path)
    assert (tmp_path / "out" / "submitted.txt").read_text() == "mesos", proc.stderr  # its own section first


def test_luigi_cfg_values_read_environment_variables_keep_their_case_and_take_dashes(tmp_path: Path) -> None:
    (tmp_path / "luigi.cfg").write_text(
        "[Located]\nroot = ${DATA_ROOT}/in\nbatchSize = 5\n"
        "[paths]\nsome-key = k\n"
        "[smtp]\npassword = ${NOT_SET_HERE}\n"  # unused by this build, so not an error, as in Luigi
    )
    cmd = [LUIGI, "--module", "configured", "Located", "--local-scheduler"]
    proc = _run(cmd, tmp_path, DATA_ROOT="/srv/data")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "located.txt").read_text() == "/srv/data/in|5|k", proc.stderr


def test_a_luigi_cfg_key_that_is_no_parameter_is_warned_of_once(tmp_path: Path) -> None:
    (tmp_path / "luigi.cfg").write_text("[Located]\nbatchsize = 5\n[core]\ndefault-scheduler-host = x\n")
    proc = _run([LUIGI, "--module", "configured", "Located", "--local-scheduler"], tmp_path)
    assert (tmp_path / "out" / "located.txt").read_text() == "nowhere|1|unset", proc.stderr
    warning = (
        "UnconsumedParameterWarning: The configuration contains the parameter 'batchsize' with value '5' "
        "that is not consumed by the task 'Located'. Did you mean 'batchSize'?"
    )
    assert proc.stderr.count(warning) == 1, proc.stderr
    assert "default_scheduler_host" not in proc.stderr  # Luigi's own sections are not checked


def test_a_value_naming_an_unset_environment_variable_fails_the_task_saying_which(tmp_path: Path) -> None:
    (tmp_path / "luigi.cfg").write_text("[Located]\nroot = ${DATA_ROOT}/in\n")
    proc = _run([LUIGI, "--module", "configured", "Located", "--local-scheduler"], tmp_path)
    assert proc.returncode != 0 and not (tmp_path / "out" / "located.txt").exists()
    assert "environment variable DATA_ROOT. Section [Located], option root=${DATA_ROOT}/in" in proc.stderr


def test_luigi_config_path_may_name_a_toml_file(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[Located]\nroot = "/from/toml"\nbatchSize = 7\n')
    cmd = [LUIGI, "--module", "configured", "Located", "--local-scheduler"]
    proc = _run(cmd, tmp_path, LUIGI_CONFIG_PARSER="toml", LUIGI_CONFIG_PATH=str(settings))
    assert (tmp_path / "out" / "located.txt").read_text() == "/from/toml|7|unset", proc.stderr


def test_tasks_with_a_batch_method_run_in_batches(tmp_path: Path) -> None:
    proc = _run([LUIGI, "--module", "batched", "Exports", "--local-scheduler"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = sorted((tmp_path / "out" / "runs.log").read_text().split())
    assert runs == ["1,2,3", "4,5"]  # max_batch_size = 3
    assert "This progress looks :) because there were no failed tasks or missing dependencies" in proc.stderr


def test_log_level_and_logging_conf_file_options_are_applied(tmp_path: Path) -> None:
    """``--log-level WARNING`` (a cron line's usual option) keeps Luigi's INFO lines and summary
    off the terminal, and ``--logging-conf-file`` configures logging, as in Luigi; both were
    accepted and ignored."""
    for day in range(4, 11):
        _raw(tmp_path, f"2024-03-{day:02d}", "a b")
    week = [LUIGI, "--module", "numbers_pipeline", "Week", "--week", "2024-W10", "--local-scheduler"]
    quiet = _run([*week, "--log-level", "WARNING"], tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert (tmp_path / "out" / "count-2024-03-06-1.json").exists()
    assert "Luigi Execution Summary" not in quiet.stderr and "Done scheduling tasks" not in quiet.stderr

    (tmp_path / "logging.ini").write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=out\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=INFO\nhandlers=out\n"
        "[handler_out]\nclass=StreamHandler\nlevel=INFO\nformatter=plain\nargs=(sys.stdout,)\n"
        "[formatter_plain]\nformat=CONFIGURED %(name)s: %(message)s\n"
    )
    configured = _run([*week, "--logging-conf-file", "logging.ini"], tmp_path)
    assert configured.returncode == 0, configured.stderr
    assert "CONFIGURED luigi-interface: Done scheduling tasks" in configured.stdout


def test_luigi_tools_deps_lists_the_tasks_between_a_task_and_an_upstream_family(tmp_path: Path) -> None:
    """``python -m luigi.tools.deps`` (and ``from luigi.tools.deps import find_deps``, which
    scripts use to find what to delete before a rerun) did not exist under the shim."""
    cmd = [sys.executable, "-m", "luigi.tools.deps", "--module", "lineage", "Aggregate", "--date", "2024-03-01"]
    proc = _run([*cmd, "--upstream-family", "Daily"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    blocks = {block.split("\n")[0]: block for block in proc.stdout.split("   TASK: ")[1:]}
    assert sorted(blocks) == ["Aggregate(date=2024-03-01)", "Clean(date=2024-03-01)", "Daily(date=2024-03-01)"]
    assert f"\n                       : [FileSystem] {out}/clean-2024-03-01.txt\n" in blocks["Clean(date=2024-03-01)"]
    everything = _run(cmd, tmp_path)  # no upstream family: every task upstream
    assert everything.stdout.count("   TASK: ") == 4 and f"[FileSystem] {out}/lookup.txt" in everything.stdout


def test_luigi_tools_deps_tree_prints_the_tree_with_each_tasks_state(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "daily-2024-03-01.txt").write_text("x")
    cmd = [sys.executable, "-m", "luigi.tools.deps_tree", "--module", "lineage", "Aggregate", "--date", "2024-03-01"]
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr
    green, blue, end = "\033[92m", "\033[94m", "\033[0m"
    assert proc.stdout == (
        f"\n└─--[Aggregate-{{'date': '2024-03-01'}} ({blue}PENDING{end})]"
        f"\n    |---[Clean-{{'date': '2024-03-01'}} ({blue}PENDING{end})]"
        f"\n    |   └─--[Daily-{{'date': '2024-03-01'}} ({green}COMPLETE{end})]"
        f"\n    └─--[Lookup-{{}} ({blue}PENDING{end})]\n"
    )


def test_build_takes_luigis_global_options_without_a_section(tmp_path: Path) -> None:
    """A Luigi cron line moved to ``ductwork build`` writes ``core``'s options as Luigi does,
    without a section (``--log-level WARNING``, ``--parallel-scheduling``): they were refused as
    unknown parameters of the task. A value their type refuses is refused naming the option, as
    Luigi refuses it, where a value for a class the build never reads passed without a word."""
    _raw(tmp_path, "2024-03-04", "a b c")
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "numbers_pipeline", "Count"]
    build += ["--day", "2024-03-04", "--no-progress", "--no-record"]
    proc = _run([*build, "--log-level", "WARNING", "--parallel-scheduling", "--assistant"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "count-2024-03-04-1.json").read_text())["words"] == 3
    wrong = _run([*build, "--log-level", "LOUD"], tmp_path)
    assert wrong.returncode == 2 and "it was given as --log-level" in wrong.stderr, wrong.stderr
    wrong = _run([*build, "--scheduler-retry-delay", "soon"], tmp_path)
    assert wrong.returncode == 2 and "it was given as --scheduler-retry-delay" in wrong.stderr, wrong.stderr


def test_an_error_raised_by_complete_is_reported_once(tmp_path: Path) -> None:
    """Luigi's worker logs a task whose ``complete()`` raised once, with the task's traceback;
    the shim logged it again when the task was failed, with a traceback of its own code
    (``FailNow``) that said nothing more."""
    (tmp_path / "shaky.py").write_text(
        "import luigi\n"
        "class Shaky(luigi.Task):\n"
        "    def complete(self):\n"
        "        raise ValueError('bucket listing timed out')\n"
        "class Top(luigi.WrapperTask):\n"
        "    def requires(self):\n"
        "        return Shaky()\n"
    )
    proc = _run([LUIGI, "--module", "shaky", "Top", "--local-scheduler"], tmp_path)
    assert "* 1 failed scheduling:" in proc.stderr, proc.stderr
    assert proc.stderr.count("ValueError: bucket listing timed out") == 1, proc.stderr
    assert "FailNow" not in proc.stderr, proc.stderr


def test_an_external_program_task_says_its_command_and_output_as_luigi(tmp_path: Path) -> None:
    """The ``luigi-interface`` lines of Luigi's ``ExternalProgramTask`` reach the terminal, and a
    failing program fails the task with its code and output (the module was refused at import)."""
    (tmp_path / "programs.py").write_text(
        "import luigi\n"
        "from luigi.contrib.external_program import ExternalProgramTask\n"
        "class Load(ExternalProgramTask):\n"
        "    def program_args(self):\n"
        "        return ['sh', '-c', 'echo loaded; echo slow disk >&2']\n"
        "class Broken(ExternalProgramTask):\n"
        "    def program_args(self):\n"
        "        return ['sh', '-c', 'echo table locked >&2; exit 3']\n"
        "class Both(luigi.WrapperTask):\n"
        "    def requires(self):\n"
        "        return [Load(), Broken()]\n"
    )
    proc = _run([LUIGI, "--module", "programs", "Both", "--local-scheduler"], tmp_path)
    assert "INFO: Running command: sh -c echo loaded; echo slow disk >&2" in proc.stderr, proc.stderr
    assert "INFO: Program stdout:\nloaded\n" in proc.stderr and "INFO: Program stderr:\nslow disk\n" in proc.stderr
    assert "ExternalProgramRunError: Program failed with return code=3:" in proc.stderr
    assert (
        "* 1 ran successfully:\n    - 1 Load(...)" in proc.stderr and "* 1 failed:\n    - 1 Broken(...)" in proc.stderr
    )


def test_build_takes_the_workers_of_luigi_cfg(tmp_path: Path) -> None:
    """``[core] workers = 3`` in luigi.cfg (or ``--core-workers 3``) is how a Luigi project says
    how many tasks run at once; the ``luigi`` command reads it, and ``ductwork build`` ran the
    same module's tasks one at a time without a word. ``--workers`` still wins."""
    (tmp_path / "together.py").write_text(
        "import os, time\n"
        "import luigi\n"
        "def meet(i):  # the three parts meet: they run at once (in processes of their own, as in Luigi)\n"
        "    os.makedirs('here', exist_ok=True)\n"
        "    open(f'here/{i}', 'w').close()\n"
        "    deadline = time.monotonic() + 20\n"
        "    while len(os.listdir('here')) < 3:\n"
        "        assert time.monotonic() < deadline, 'the parts did not run at once'\n"
        "        time.sleep(0.05)\n"
        "class Part(luigi.Task):\n"
        "    i = luigi.IntParameter()\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget(f'out/part-{self.i}.txt')\n"
        "    def run(self):\n"
        "        meet(self.i)\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('ok')\n"
        "class All(luigi.WrapperTask):\n"
        "    def requires(self):\n"
        "        return [Part(i=i) for i in range(3)]\n"
    )
    (tmp_path / "luigi.cfg").write_text("[core]\nworkers = 3\n")
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "together", "All", "--no-progress"]
    proc = _run(build, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-0.txt", "part-1.txt", "part-2.txt"]
    (tmp_path / "luigi.cfg").unlink()
    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "here")
    proc = _run([*build, "--core-workers", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_flow_from_task_run_takes_the_tasks_luigi_cfg_values(tmp_path: Path) -> None:
    """``[Report] region = west`` in luigi.cfg applies under ``luigi`` and ``ductwork build``;
    a run of ``Flow.from_task(Report)`` gave the task the default explicitly and built north."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "regional.py").write_text(
        "import luigi\n"
        "from ductwork import Flow\n"
        "class Report(luigi.Task):\n"
        "    date = luigi.DateParameter()\n"
        "    region = luigi.Parameter(default='north')\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget(f'out/{self.date}-{self.region}.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('x')\n"
        "flow = Flow.from_task(Report, flow_id='regional', schedule=None, date_param='date')\n"
    )
    (tmp_path / "luigi.cfg").write_text("[Report]\nregion = west\n")
    run = [sys.executable, "-m", "ductwork.cli", "run", "regional", "--date", "2024-03-01", "--no-progress"]
    proc = _run(run, tmp_path, DUCTWORK_FLOWS_FOLDER=str(flows))
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["2024-03-01-west.txt"]
    proc = _run([*run, "--param", "region=south"], tmp_path, DUCTWORK_FLOWS_FOLDER=str(flows))
    assert (tmp_path / "out" / "2024-03-01-south.txt").exists(), proc.stderr


def test_build_does_not_run_a_disabled_task_nor_what_needs_it(tmp_path: Path) -> None:
    """``ductwork build`` of a Luigi module ran a task with ``disabled = True``, and what
    needs it; Luigi runs neither (its requirements still run)."""
    (tmp_path / "switched.py").write_text(
        "import luigi\n"
        "class Source(luigi.Task):\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/source.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('x')\n"
        "class Off(luigi.Task):\n"
        "    disabled = True\n"
        "    def requires(self):\n"
        "        return Source()\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/off.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('x')\n"
        "class Top(luigi.Task):\n"
        "    def requires(self):\n"
        "        return Off()\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/top.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('x')\n"
    )
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "switched", "Top", "--no-progress"]
    proc = _run(build, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["source.txt"], proc.stdout
    assert "* 2 were skipped (disabled, or needing a disabled task)" in proc.stdout, proc.stdout


def test_a_wrong_value_in_luigi_cfg_is_said_to_be_in_luigi_cfg(tmp_path: Path) -> None:
    """A value of luigi.cfg that its parameter's type refuses was said to be "in the config
    file", or in ductwork.toml when the project had one: the wrong file to open."""
    (tmp_path / "knobs.py").write_text(
        "import luigi\n"
        "class Knobs(luigi.Config):\n"
        "    size = luigi.IntParameter(default=1)\n"
        "class Sized(luigi.Task):\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget(f'out/{Knobs().size}.txt')\n"
    )
    (tmp_path / "luigi.cfg").write_text("[Knobs]\nsize = five\n")
    (tmp_path / "ductwork.toml").write_text("[other]\nx = 1\n")
    proc = _run([LUIGI, "--module", "knobs", "Sized", "--local-scheduler"], tmp_path)
    assert "got 'five'" in proc.stderr and "it was given as [Knobs] size in luigi.cfg" in proc.stderr, proc.stderr


def test_build_takes_the_resources_of_luigi_cfg(tmp_path: Path) -> None:
    """``[resources] db = 2`` in luigi.cfg is what lets a task needing two of ``db`` run; the
    ``luigi`` command reads it, and ``ductwork build`` of the same module left the task waiting
    for a resource of one and ended without running it ("had missing dependencies")."""
    (tmp_path / "heavy.py").write_text(
        "import luigi\n"
        "class Heavy(luigi.Task):\n"
        "    resources = {'db': 2}\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/heavy.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('ok')\n"
    )
    (tmp_path / "luigi.cfg").write_text("[resources]\ndb = 2\n")
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "heavy", "Heavy", "--no-progress"]
    proc = _run(build, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "out" / "heavy.txt").read_text() == "ok"


def test_build_of_a_task_of_luigi_itself_says_luigi_is_installed(tmp_path: Path) -> None:
    """With Luigi itself installed (which the contrib modules' error suggests), ``import luigi``
    is Luigi's, and ``ductwork build`` said "no task class named 'Report'. Known task classes:
    ExternalTask, WrapperTask" of a class the module plainly defines. It says why now."""
    real = tmp_path / "site" / "luigi"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("from luigi.task import Task\n")
    (real / "task.py").write_text("class Task:\n    pass\n")
    (tmp_path / "reports.py").write_text("import luigi\nclass Report(luigi.Task):\n    pass\n")
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "reports", "Report", "--no-progress"]
    proc = _run(build, tmp_path, PYTHONPATH=f"{tmp_path / 'site'}{os.pathsep}{PYTHONPATH}")
    assert proc.returncode != 0
    assert "'Report' of module reports is a task class of Luigi itself" in proc.stderr, proc.stderr
    assert str(real) in proc.stderr and "run it with the luigi command" in proc.stderr


def test_build_says_a_task_needing_more_of_a_resource_than_there_is_could_not_run(tmp_path: Path) -> None:
    """Without ``[resources] db = 2`` anywhere, a task needing two of ``db`` never starts; the
    build's summary said it "had missing dependencies" (it has none) and its note was "trigger
    rule all_success": nothing said that the resource was short, nor where to grow it."""
    (tmp_path / "heavy.py").write_text(
        "import luigi\n"
        "class Heavy(luigi.Task):\n"
        "    resources = {'db': 2}\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/heavy.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as out:\n"
        "            out.write('ok')\n"
    )
    build = [sys.executable, "-m", "ductwork.cli", "build", "--module", "heavy", "Heavy", "--no-progress"]
    proc = _run(build, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "* 1 were left pending, among these:\n    * 1 needed more of a resource than there is" in proc.stdout
    assert "had missing dependencies" not in proc.stdout
    assert "task Heavy__99914b932b needs 2 of resource 'db', of which there is 1: it could not run" in proc.stderr
    assert "[resources] db = 2" in proc.stderr
