"""What the shims support, accept without effect, or refuse: one table for parse-time errors,
``ductwork doctor`` and the migration guide.

A refused feature raises ``UnsupportedFeatureError`` while the file is imported, naming the
file, the line and the feature, so a DAG file that would behave differently under Ductwork never
registers half of itself. An ignored feature (a UI colour, an executor hint) changes nothing a
run does; ``ductwork doctor`` lists those too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from ductwork.core.definition_context import caller_site
from ductwork.errors import DefinitionError

UNSUPPORTED = "unsupported"
IGNORED = "ignored"
DIFFERS = "differs"


class UnsupportedFeatureError(DefinitionError):
    """A DAG file or Luigi module uses something Ductwork cannot run as written."""

    def __init__(self, feature: str, why: str, file: str, line: int) -> None:
        self.feature = feature
        self.file = file
        self.line = line
        super().__init__(f"{file}:{line}: {feature} is not supported by Ductwork: {why}")


def refuse(feature: str, why: str) -> NoReturn:
    """Fail the definition being imported, naming the user's file and line."""
    file, line = caller_site()
    raise UnsupportedFeatureError(feature, why, file, line)


@dataclass(frozen=True)
class Feature:
    """One entry of the table: a name as ``ductwork doctor`` matches it, and what happens."""

    name: str
    status: str
    note: str


def _f(name: str, status: str, note: str) -> tuple[str, Feature]:
    return name, Feature(name, status, note)


AIRFLOW: dict[str, Feature] = dict(
    [
        # DAG(...) arguments
        _f("DAG.timetable", UNSUPPORTED, "custom timetables: use a cron string, a preset or a timedelta"),
        _f("DAG.schedule=@continuous", UNSUPPORTED, "continuous schedules: use a short interval"),
        _f("DAG.user_defined_filters", UNSUPPORTED, "custom Jinja filters per DAG"),
        _f("DAG.render_template_as_native_obj", UNSUPPORTED, "templates always render to strings"),
        _f("DAG.jinja_environment_kwargs", UNSUPPORTED, "the Jinja environment is Ductwork's sandbox"),
        _f("DAG.fail_stop", UNSUPPORTED, "stopping a run at the first failure"),
        _f(
            "DAG.dagrun_timeout",
            DIFFERS,
            "enforced (Flow run_timeout); a running try it stops ends failed, where Airflow marks it skipped",
        ),
        _f("DAG.sla_miss_callback", IGNORED, "SLAs (removed in Airflow 3) are not checked"),
        _f("DAG.access_control", IGNORED, "per-DAG permissions: Ductwork has viewer/operator/admin roles"),
        _f("DAG.default_view", IGNORED, "a UI preference"),
        _f("DAG.orientation", IGNORED, "a UI preference"),
        _f("DAG.owner_links", IGNORED, "a UI preference"),
        _f("DAG.max_consecutive_failed_dag_runs", IGNORED, "the DAG is not paused after failed runs"),
        _f("DAG.template_undefined", IGNORED, "undefined template names are always errors"),
        _f("DAG.catchup", DIFFERS, "defaults to True, as in Airflow 2 (Airflow 3 defaults to False)"),
        _f(
            "DAG.timedelta_no_catchup",
            DIFFERS,
            "its runs keep the start date's times (every 6 hours from 03:00: 03:00, 09:00...), where Airflow 2 "
            "starts the first one at the moment its scheduler first sees the DAG less the interval, at "
            "unaligned times (11:44:12...), and counts the next ones from there; use a cron string for fixed "
            "times of day",
        ),
        _f(
            "Variable.get_at_import",
            DIFFERS,
            "read again when the file is parsed after the variable changed, and by a warm worker before a "
            "try once it changed (looked at the first try of each run, at most once a second); every "
            "import reads the database, so reading it inside the task is cheaper",
        ),
        # operator arguments
        _f("BaseOperator.run_as_user", UNSUPPORTED, "tasks run as the worker's user"),
        _f("BaseOperator.wait_for_downstream", UNSUPPORTED, "only depends_on_past is supported"),
        _f("BaseOperator.executor", UNSUPPORTED, "one executor per scheduler"),
        _f("BaseOperator.sla", IGNORED, "SLAs are not checked"),
        _f(
            "BaseOperator.weight_rule",
            DIFFERS,
            "priority_weight is always absolute (Airflow's default sums downstream weights)",
        ),
        _f(
            "BaseOperator.executor_config",
            IGNORED,
            "executor hints, except under executor = \"kubernetes\", where Ductwork's keys shape the try's pod",
        ),
        _f("BaseOperator.resources", IGNORED, "Airflow's cpu/ram hints (not Luigi resources)"),
        _f("BaseOperator.max_active_tis_per_dag", IGNORED, "use a pool"),
        _f("BaseOperator.max_active_tis_per_dagrun", IGNORED, "use a pool"),
        _f("BaseOperator.start_date", IGNORED, "a task's own start/end dates; the DAG's apply"),
        _f("BaseOperator.end_date", IGNORED, "a task's own start/end dates; the DAG's apply"),
        _f("BaseOperator.task_concurrency", IGNORED, "use a pool"),
        # modules and classes
        _f(
            "airflow.operators.python.PythonVirtualenvOperator",
            UNSUPPORTED,
            "virtualenv tasks: run in the worker's environment",
        ),
        _f("airflow.operators.python.ExternalPythonOperator", UNSUPPORTED, "external interpreters"),
        _f("airflow.operators.subdag", UNSUPPORTED, "SubDAGs (removed in Airflow 3): use task groups"),
        _f(
            "airflow.datasets.Dataset",
            DIFFERS,
            "a Ductwork asset; a name with no scheme:// (Dataset('orders')) is the asset asset://orders",
        ),
        _f(
            "airflow.sdk.Asset",
            DIFFERS,
            "a Ductwork asset named by its URI (or asset://NAME when only a name is given); group is not kept",
        ),
        _f(
            "airflow.timetables.trigger.CronTriggerTimetable",
            DIFFERS,
            "a cron schedule: a run's logical date is the start of the interval that ended, not the fire time",
        ),
        _f("airflow.datasets.DatasetAlias", UNSUPPORTED, "dataset aliases (events attached at run time)"),
        _f("airflow.sdk.AssetAlias", UNSUPPORTED, "asset aliases (events attached at run time)"),
        _f("airflow.sdk.AssetWatcher", UNSUPPORTED, "asset watchers: use Flow(triggers=...) message sources"),
        _f("task.virtualenv", UNSUPPORTED, "virtualenv tasks"),
        _f("task.external_python", UNSUPPORTED, "external interpreters"),
        _f("task.docker", UNSUPPORTED, "use ductwork.integrations.docker.DockerOperator"),
        _f("task.kubernetes", UNSUPPORTED, "use ductwork.integrations.kubernetes.KubernetesPodOperator"),
        _f("conf", DIFFERS, "the template variable `conf` is the run's conf (Airflow: the configuration)"),
        _f("DAG.schedule=timetable", UNSUPPORTED, "custom timetables: use a cron string, a preset or a timedelta"),
        _f(
            "attr.as_teardown",
            DIFFERS,
            "a teardown runs when everything upstream is done and one upstream task succeeded",
        ),
        _f(
            "task_group.expand",
            DIFFERS,
            "mapped task groups: a first task <group>.expand adds the instances <group>.<task>[i]; "
            "each <group>.<task> collects its instances' results and is upstream_failed if one failed",
        ),
    ]
)
"""Features of Airflow DAG files that the shim refuses, ignores, or runs differently."""


LUIGI: dict[str, Feature] = dict(
    [
        _f("luigi.contrib", UNSUPPORTED, "Luigi's contrib integrations: use ductwork.integrations"),
        _f(
            "luigi.contrib.external_program",
            DIFFERS,
            "the program runs in a process group stopped with the task; a tracking_url_pattern is "
            "searched once the program ended; ExternalProgramRunError's text leaves the environment out",
        ),
        _f(
            "luigi.scheduler.Scheduler",
            UNSUPPORTED,
            "the central scheduler: use --local-scheduler or `ductwork scheduler`",
        ),
        _f("luigi.worker.Worker", UNSUPPORTED, "Luigi's worker class: use luigi.build()"),
        _f("luigi.rpc", UNSUPPORTED, "the remote scheduler client"),
        _f("luigi.server", UNSUPPORTED, "luigid: use `ductwork webserver`"),
        _f(
            "Task.batch_method",
            DIFFERS,
            "luigi.build and the luigi command batch the tasks to run when the build is planned; "
            "`ductwork build` and the scheduler run each task on its own",
        ),
        _f("DynamicRequirements.custom_complete", IGNORED, "each requirement's complete() is used"),
        _f(
            "luigi.build",
            DIFFERS,
            "a failed task runs again within one build only with --worker-keep-alive or --scheduler-retry-delay 0, "
            "up to retry_count runs in all (4 without retry_count)",
        ),
    ]
)
"""Features of Luigi modules that the shim refuses, ignores, or runs differently."""
