"""``airflow.models.dagbag.DagBag``: the DAGs of a folder, as the DAG integrity tests of a
repository load them (``assert not DagBag(dag_folder="dags/").import_errors``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DagBag:
    """The DAGs of ``dag_folder`` (the flows folder by default) by id, and the files that
    failed to load with their error (a native flow's file too; native flows are not DAGs).
    Ductwork has no example DAGs: ``include_examples`` and the database options are accepted
    and change nothing."""

    def __init__(
        self,
        dag_folder: str | Path | None = None,
        include_examples: bool | None = None,
        safe_mode: bool | None = None,
        read_dags_from_db: bool = False,
        collect_dags: bool = True,
        **_: Any,
    ) -> None:
        if dag_folder is None:
            from ductwork.settings import Settings

            dag_folder = Settings.load().flows_folder
        self.dag_folder = str(dag_folder)
        self.dags: dict[str, Any] = {}
        self.import_errors: dict[str, str] = {}
        """File -> its error, with the traceback when there is one (as Airflow's)."""
        self.file_last_changed: dict[str, Any] = {}
        if collect_dags:
            self.collect_dags(self.dag_folder)

    def collect_dags(self, dag_folder: str | Path | None = None, **_: Any) -> None:
        """Load every flow file of ``dag_folder`` (or one file) and add what it defines."""
        from ductwork.loading import discover

        bag = discover([dag_folder or self.dag_folder])
        self.dags.update({flow_id: flow for flow_id, flow in bag.flows.items() if _is_dag(flow)})
        for error in bag.errors:
            self.import_errors[error.file] = error.traceback or str(error)

    def process_file(self, filepath: str | Path, **_: Any) -> list[Any]:
        """The DAGs of one file, added to the bag."""
        from ductwork.loading import load_file

        loaded = load_file(filepath)
        for error in loaded.errors:
            self.import_errors[error.file] = error.traceback or str(error)
        dags = [flow for flow in loaded.flows if _is_dag(flow)]
        for dag in dags:
            self.dags[dag.flow_id] = dag
        return dags

    def get_dag(self, dag_id: str, session: Any = None) -> Any:
        return self.dags.get(dag_id)

    @property
    def dag_ids(self) -> list[str]:
        return list(self.dags)

    def size(self) -> int:
        return len(self.dags)

    def __len__(self) -> int:
        return len(self.dags)


def _is_dag(flow: Any) -> bool:
    """Whether a flow of the folder is an Airflow DAG. A folder moved to Ductwork one file at a
    time also holds native flows (``Flow``, ``@flow``, ``Flow.from_task``): as DAGs they broke
    the integrity tests that iterate the bag (``dag.tasks`` is a dict of them, ``dag.timezone``
    and ``dag.dag_id`` missing), and Airflow's own bag has no such flows (its safe mode skips a
    file that never names airflow). Their files' import errors are still in ``import_errors``."""
    from .dag import DAG

    return isinstance(flow, DAG)


__all__ = ["DagBag"]
