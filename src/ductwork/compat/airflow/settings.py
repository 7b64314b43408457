"""``airflow.settings``: ``DAGS_FOLDER``, ``AIRFLOW_HOME``, ``TIMEZONE`` and ``Session``.

DAG files find files beside them with ``os.path.join(settings.DAGS_FOLDER, "sql")``; under
Ductwork that is the flows folder (``conf.get("core", "dags_folder")``). ``Session()`` is the
stand-in of ``airflow.utils.session``: a query on it raises, since Airflow's metadata database
is not Ductwork's. The folders are looked up when read, not when the module is imported.
"""

from __future__ import annotations

from typing import Any

from .utils.session import NoMetadataSession


def Session() -> NoMetadataSession:
    """A session factory, as Airflow's: the stand-in session."""
    return NoMetadataSession()


def __getattr__(name: str) -> Any:
    from .configuration import conf

    if name == "DAGS_FOLDER":
        return conf.get("core", "dags_folder")
    if name == "AIRFLOW_HOME":
        return conf.get("core", "airflow_home")
    if name == "TIMEZONE":
        import pendulum

        return pendulum.timezone("UTC")
    raise AttributeError(f"module 'airflow.settings' has no attribute {name!r}")


__all__ = ["Session"]
