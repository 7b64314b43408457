"""Luigi's built-in configuration classes: ``[core]`` (global options, given without a section:
``--workers 2 --local-scheduler``), ``[scheduler]`` and ``[worker]``."""

from __future__ import annotations

import datetime as dt
import os

from . import parameter as p
from .task import Config


class core(Config):
    """Luigi's global options (given without a section: ``--workers 2 --local-scheduler``)."""

    use_cmdline_section = False
    local_scheduler = p.BoolParameter(
        default=False, always_in_help=True, description="Use an in-memory central scheduler. Useful for testing."
    )
    scheduler_host = p.Parameter(default="localhost")
    scheduler_port = p.IntParameter(default=8082)
    scheduler_url = p.Parameter(default="")
    lock_size = p.IntParameter(default=1)
    no_lock = p.BoolParameter(default=False)
    lock_pid_dir = p.Parameter(default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "luigi"))
    take_lock = p.BoolParameter(default=False)
    workers = p.IntParameter(default=1)
    logging_conf_file = p.Parameter(default="")
    log_level = p.ChoiceParameter(
        default="DEBUG",
        choices=["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        description="Default log level to use when logging_conf_file is not set",
    )
    module = p.Parameter(default="", always_in_help=True, description="Used for dynamic loading of modules")
    parallel_scheduling = p.BoolParameter(default=False)
    parallel_scheduling_processes = p.IntParameter(default=0)
    assistant = p.BoolParameter(default=False)
    help = p.BoolParameter(
        default=False, always_in_help=True, description="Show most common flags and all task-specific flags"
    )
    help_all = p.BoolParameter(default=False, always_in_help=True, description="Show all command line flags")


class scheduler(Config):
    """Luigi's ``[scheduler]``. The settings of ``luigid`` alone (``remove_delay``,
    ``state_path``, ``metrics_collector``...) are accepted, as Luigi accepts them on a
    ``--local-scheduler`` command line or in a shared luigi.cfg, and have no effect here."""

    retry_delay = p.FloatParameter(default=900.0)
    retry_count = p.IntParameter(default=999999999)
    disable_window = p.IntParameter(default=3600)
    disable_hard_timeout = p.IntParameter(default=999999999)
    disable_persist = p.IntParameter(default=86400)
    record_task_history = p.BoolParameter(default=False)
    batch_emails = p.BoolParameter(default=False)
    """Failures e-mailed in batches (``luigi.batch_notifier``, the ``[batch_email]`` settings)."""
    remove_delay = p.FloatParameter(default=600.0)
    worker_disconnect_delay = p.FloatParameter(default=60.0)
    state_path = p.Parameter(default="/var/lib/luigi-server/state.pickle")
    max_shown_tasks = p.IntParameter(default=100000)
    max_graph_nodes = p.IntParameter(default=100000)
    prune_on_get_work = p.BoolParameter(default=False)
    pause_enabled = p.BoolParameter(default=True)
    send_messages = p.BoolParameter(default=True)
    metrics_collector = p.Parameter(default="default")
    metrics_custom_import = p.OptionalStrParameter(default=None)
    stable_done_cooldown_secs = p.IntParameter(default=10)


def _core_name(name: str) -> dict[str, str]:
    """Luigi's older spelling of a ``[worker]`` option in ``[core]`` (``worker-timeout``),
    which its luigi.cfg files still use: read when ``[worker]`` does not set the option."""
    return {"section": "core", "name": name}


class worker(Config):
    """Luigi's ``[worker]``, every option of Luigi 3.8 (a cron line's ``--worker-wait-interval 5``
    was refused as an unknown parameter). Those about a worker's talk with ``luigid`` (``id``,
    ``ping_interval``, ``wait_interval``, ``wait_jitter``, ``count_uniques``...) are accepted
    and have no effect: a build runs in its own process."""

    task_limit = p.OptionalIntParameter(default=None, config_path=_core_name("worker-task-limit"))
    keep_alive = p.BoolParameter(default=False, config_path=_core_name("worker-keep-alive"))
    retry_external_tasks = p.BoolParameter(default=False, config_path=_core_name("retry-external-tasks"))
    max_reschedules = p.IntParameter(default=1, config_path=_core_name("worker-max-reschedules"))
    timeout = p.IntParameter(default=0, config_path=_core_name("worker-timeout"))
    no_install_shutdown_handler = p.BoolParameter(default=False)
    check_unfulfilled_deps = p.BoolParameter(default=True)
    check_complete_on_run = p.BoolParameter(default=False)
    """A task whose ``run()`` ended without its ``complete()`` saying so fails, as in Luigi."""
    force_multiprocessing = p.BoolParameter(default=False)
    send_failure_email = p.BoolParameter(default=True)
    id = p.Parameter(default="")
    ping_interval = p.FloatParameter(default=1.0, config_path=_core_name("worker-ping-interval"))
    count_uniques = p.BoolParameter(default=False, config_path=_core_name("worker-count-uniques"))
    count_last_scheduled = p.BoolParameter(default=False)
    wait_interval = p.FloatParameter(default=1.0, config_path=_core_name("worker-wait-interval"))
    wait_jitter = p.FloatParameter(default=5.0)
    max_keep_alive_idle_duration = p.TimeDeltaParameter(default=dt.timedelta(0))
    task_process_context = p.OptionalParameter(default=None)
    cache_task_completion = p.BoolParameter(default=False)
