"""What a pool worker is given: where a task's code comes from, where results go, and where
tries are recorded.

The parent process pickles one ``WorkerRuntime`` and hands it to every worker it starts; the
worker calls ``open`` once, then, for each try, ``on_try_started``, ``resolve``, ``results``
(inside ``execute_try``) and ``on_try_finished``. The executor itself knows nothing about the
store (layering): a scheduler that keeps tries in a database plugs in a runtime whose hooks
write to that database, and so a worker records the outcome of its own try even when the
scheduler that sent it has died.

``FlowFileRuntime`` is the default: it imports the flow file recorded for a run with
``ductwork.loading``, once per file per worker (again only when the file changes), keeps
results in memory unless given a factory for a shared backend, and records nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ductwork.core.class_flow import PLANNING_ERROR, ClassTaskRunner, load_task
from ductwork.core.config import ParamSources
from ductwork.core.connections import Secrets, lending_secrets, variables_read
from ductwork.core.context import RunInfo
from ductwork.core.executable import Executable
from ductwork.core.flow import Flow
from ductwork.core.graph import CLASS_TASK, NodeSpec
from ductwork.core.results import MemoryResults, ResultBackend
from ductwork.core.task_services import TaskServices
from ductwork.core.versioning import is_user_file
from ductwork.engine.execution import TryOutcome
from ductwork.engine.executor import TryRequest
from ductwork.errors import NotFoundError, TaskRemovedError, did_you_mean
from ductwork.loading import activate_compat, import_file, load_file, module_name_for


@dataclass(frozen=True)
class RunSetup:
    """What a worker knows about one run: the run, the file its flow is defined in, and the
    parameter sources it was started with (so class tasks resolve config as in the parent)."""

    info: RunInfo
    flow_file: str | None = None
    param_sources: ParamSources = field(default_factory=ParamSources)


class WorkerRuntime:
    """The worker's side of the engine. Subclass it; every hook has a harmless default.

    It must be picklable: it is built in the parent and sent to each worker, where ``open`` is
    called before the first try. ``on_try_heartbeat`` runs in a second thread of the worker
    while a try runs, so anything it shares with the other hooks must be thread-safe.
    """

    def open(self) -> None:
        """Called once in the worker process before its first try (connect to databases here)."""

    def close(self) -> None:
        """Called when the worker stops normally."""

    def resolve(self, node: NodeSpec, run: RunSetup) -> Executable:
        """The code behind ``node`` for one of ``run``'s tries."""
        raise NotImplementedError(f"{type(self).__name__} does not implement resolve()")

    def results(self) -> ResultBackend:
        """Where tries push and pull results; must be shared across processes to pass
        results between tasks that run in different workers."""
        raise NotImplementedError(f"{type(self).__name__} does not implement results()")

    def services(self) -> TaskServices | None:
        """Connections, variables, store and alerts lent to tries (``None``: the defaults)."""
        return None

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        """Record that this worker starts the try; ``False`` means "do not run it" (the
        scheduler's database no longer wants it). Called before any user code of the try."""
        return True

    def on_try_heartbeat(self, request: TryRequest, pid: int) -> None:
        """Called every ``heartbeat_interval`` seconds while the try runs (from another thread)."""

    def on_try_finished(self, request: TryRequest, outcome: TryOutcome) -> None:
        """Record how the try ended. Called before the outcome is sent to the parent, so a
        parent that died meanwhile loses nothing."""

    def recorded_outcome(self, request: TryRequest) -> TryOutcome | None:
        """Called in the parent when a worker died during a try: the outcome the worker had
        recorded for it before dying, if any (it then wins over "the worker died")."""
        return None

    def try_started(self, request: TryRequest) -> bool | None:
        """Called in the parent when a worker died with ``request`` first in its queue: whether
        the worker had recorded its start. ``False`` puts the try back in line uncharged (no
        user code of it ran); ``None`` (not known) charges it to the task's retries."""
        return None


ResultsFactory = Callable[[], ResultBackend]
_RECHECK = 1.0


class FlowFileRuntime(WorkerRuntime):
    """Resolves operator nodes from the run's flow file and class-task nodes from their module;
    results from ``results_factory``; records nothing.

    Args:
        results_factory: a picklable callable that opens the result backend in the worker.
            The default keeps results in the worker's memory: fine for tasks that pass nothing
            to each other, wrong for those that do (each worker would see only its own).
    """

    def __init__(self, *, results_factory: ResultsFactory | None = None) -> None:
        self.results_factory = results_factory
        self._results: ResultBackend | None = None
        self._files: dict[str, _LoadedFlows] = {}
        self._executables: dict[tuple[str, str, str], Executable] = {}
        self._modules: dict[str, _SeenModule] = {}
        self._helpers: dict[str, _SeenModule] = {}
        """The user modules flow files imported (helpers, and what those import)."""
        self._secrets: Secrets | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration travels to a worker; imported flows and open backends stay put.
        return {"results_factory": self.results_factory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.results_factory = state["results_factory"]
        self._results = None
        self._files = {}
        self._executables = {}
        self._modules = {}
        self._helpers = {}
        self._secrets = None

    def results(self) -> ResultBackend:
        if self._results is None:
            self._results = self.results_factory() if self.results_factory is not None else MemoryResults()
        return self._results

    def resolve(self, node: NodeSpec, run: RunSetup) -> Executable:
        if node.kind == CLASS_TASK:
            activate_compat()  # a Luigi module's ``import luigi``: the shim when Luigi is absent
            self._forget_if_edited(node.module, run.info.key)
            task = load_task(node, import_file=_import_by_path)
            self._note_module(node.module)
            broken = node.extra.get(PLANNING_ERROR)  # could not be planned: fails with that line
            return ClassTaskRunner(task, broken=str(broken) if broken is not None else None)
        file = run.flow_file
        if file is None:
            raise NotFoundError(
                f"no flow file is known for flow {run.info.flow_id!r}: the try request carries none "
                "and the pool was given none for it (PoolExecutor(flow_files={flow_id: path}))"
            )
        flows = self._flows(file, run.info.key)
        key = (file, run.info.flow_id, node.task_id)
        executable = self._executables.get(key)
        if executable is None:
            try:
                operator: Any = flows.get(run.info.flow_id).resolve_operator(node)
            except NotFoundError:
                # The file as imported has no such task, and it was not edited: its tasks may come
                # from what it reads when imported (a Variable, the environment, a database), as
                # the scheduler's parse that made this run read it. Imported again, once, before
                # the task is said removed (a warm worker failed a task the scheduler had just
                # added after a Variable changed).
                self._forget(file)
                try:
                    operator = self._flows(file, run.info.key).get(run.info.flow_id).resolve_operator(node)
                except NotFoundError as exc:
                    raise TaskRemovedError(
                        f"{exc} It was removed from {file} after this run started, so this run's tries of it "
                        "cannot run; the next runs follow the file as it is now"
                    ) from None
            executable = self._executables[key] = operator
        return executable

    def _flows(self, file: str, run_key: str) -> _LoadedFlows:
        """The flows of ``file``, imported once and again after the file changed."""
        loaded = self._files.get(file)
        if loaded is not None and not loaded.look.due(run_key):
            return loaded
        if loaded is not None and self._helpers_edited():
            self._forget_helpers()
            loaded = None
        stamp = _stamp(file)
        if loaded is not None and loaded.stamp == stamp and not self._variables_changed(loaded):
            return loaded
        if loaded is not None:
            self._forget(file)
        before = set(sys.modules)
        with lending_secrets(self._lendable_secrets()):
            loaded = _LoadedFlows.load(file, stamp)
        self._note_helpers(set(sys.modules) - before, file)
        loaded.look.due(run_key)
        self._files[file] = loaded
        return loaded

    def _variables_changed(self, loaded: _LoadedFlows) -> bool:
        """Whether a variable the file read when it was imported has another value now: its
        top-level ``Variable.get`` was read once for the life of the warm worker (a task cleared
        after the variable changed failed again on the old value), where Airflow reads it at
        every try. Looked at when the file is (``_Look``); the database down: no change."""
        if not loaded.variables:
            return False
        try:
            secrets = self._import_secrets()
            if secrets is None:
                return False
            now = {name: secrets.get_variable(name, default=None) for name in loaded.variables}
        except Exception:
            return False
        return now != loaded.variables

    def _lendable_secrets(self) -> Secrets | None:
        services = self.services()
        return services.secrets if services is not None else None

    def _import_secrets(self) -> Secrets | None:
        """The secrets a flow file's top-level code reads when this worker imports it: its tries'
        (the scheduler's database), or, without services, the ones the settings name."""
        services = self.services()
        if services is not None and services.secrets is not None:
            return services.secrets
        if self._secrets is None:
            from ductwork.engine.services_setup import build_secrets, existing_database
            from ductwork.settings import Settings

            settings = Settings.load()
            self._secrets = build_secrets(settings, engine=existing_database(settings))
        return self._secrets

    def _note_helpers(self, names: set[str], flow_file: str) -> None:
        for name in names:
            helper = getattr(sys.modules.get(name), "__file__", None)
            if helper and helper != flow_file and is_user_file(helper):
                self._helpers[name] = _SeenModule(helper, _stamp(helper))

    def _helpers_edited(self) -> bool:
        return any(_stamp(seen.file) != seen.stamp for seen in self._helpers.values())

    def _forget_helpers(self) -> None:
        """A helper module was edited: every flow file is imported again with the helpers as
        they are now (a flow file holds what it took from them: ``from helper import f``)."""
        for name in self._helpers:
            sys.modules.pop(name, None)
        self._helpers.clear()
        for file in list(self._files):
            self._forget(file)

    def _forget_if_edited(self, name: str | None, run_key: str) -> None:
        """A class task's module imported again when its file changed, looked at as flow files are."""
        seen = self._modules.get(name) if name else None
        if seen is None or name is None or not seen.look.due(run_key):
            return
        if _stamp(seen.file) != seen.stamp:
            sys.modules.pop(name, None)
            del self._modules[name]

    def _note_module(self, name: str | None) -> None:
        module = sys.modules.get(name) if name else None
        file = getattr(module, "__file__", None)
        if name and file and name not in self._modules:
            self._modules[name] = _SeenModule(file, _stamp(file))

    def _forget(self, file: str) -> None:
        sys.modules.pop(module_name_for(Path(file)), None)
        del self._files[file]
        for key in [k for k in self._executables if k[0] == file]:
            del self._executables[key]


def _stamp(file: str) -> int:
    try:
        return os.stat(file).st_mtime_ns
    except OSError:
        return -1


@dataclass
class _Look:
    """When a file was last looked at, and for which run's try. A file is looked at again for
    the first try of every run a worker sees (a run triggered right after an edit runs the
    edited code), and otherwise no more than once a second (a stat per try would cost more
    than a short task)."""

    checked: float = float("-inf")
    run_key: str = ""

    def due(self, run_key: str) -> bool:
        """Whether to look now; if so, the look is counted as done."""
        now = time.monotonic()
        if run_key == self.run_key and now < self.checked + _RECHECK:
            return False
        self.checked, self.run_key = now, run_key
        return True


@dataclass
class _SeenModule:
    """A class task's module as imported: its file's stamp then, and the last look at it."""

    file: str
    stamp: int
    look: _Look = field(default_factory=_Look)


@dataclass
class _LoadedFlows:
    file: str
    stamp: int
    flows: dict[str, Flow]
    errors: list[Exception]
    look: _Look = field(default_factory=_Look)
    variables: dict[str, str | None] = field(default_factory=dict)
    """The variables its import read, with the values it got (``_variables_changed``)."""

    @classmethod
    def load(cls, file: str, stamp: int) -> _LoadedFlows:
        with variables_read() as seen:
            loaded = load_file(file)
        flows = {f.flow_id: f for f in loaded.flows}
        return cls(file, stamp, flows, list(loaded.errors), variables=dict(seen))

    def get(self, flow_id: str) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is not None:
            return flow
        for error in self.errors:
            if repr(flow_id) in str(error):
                raise error
        if self.errors:
            raise self.errors[0]
        raise NotFoundError(
            f"{self.file} has no flow {flow_id!r}.{did_you_mean(flow_id, self.flows)} "
            f"Flows in it: {', '.join(self.flows) or '(none)'}"
        )


def _import_by_path(path: str, module_name: str) -> ModuleType:
    return import_file(path, module_name=module_name)
