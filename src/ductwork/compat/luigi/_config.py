"""Luigi's built-in configuration classes: ``[core]`` (global options, given without a section:
``--workers 2 --local-scheduler``), ``[scheduler]`` and ``[worker]``."""

from __future__ import annotations

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
    retry_delay = p.FloatParameter(default=900.0)
    retry_count = p.IntParameter(default=999999999)
    disable_window = p.IntParameter(default=3600)
    disable_hard_timeout = p.IntParameter(default=999999999)
    disable_persist = p.IntParameter(default=86400)
    record_task_history = p.BoolParameter(default=False)
    batch_emails = p.BoolParameter(default=False)
    """Failures e-mailed in batches (``luigi.batch_notifier``, the ``[batch_email]`` settings)."""


class worker(Config):
    task_limit = p.OptionalIntParameter(default=None)
    keep_alive = p.BoolParameter(default=False)
    retry_external_tasks = p.BoolParameter(default=False)
    max_reschedules = p.IntParameter(default=1)
    timeout = p.IntParameter(default=0)
    no_install_shutdown_handler = p.BoolParameter(default=False)
    check_unfulfilled_deps = p.BoolParameter(default=True)
    force_multiprocessing = p.BoolParameter(default=False)
    send_failure_email = p.BoolParameter(default=True)
