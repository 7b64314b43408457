"""``airflow.utils.session``: ``provide_session``, ``create_session``, ``NEW_SESSION``.

DAG files import these for helpers that take a ``session`` (``@provide_session def
cleanup(session=NEW_SESSION)``) and pass it on to Airflow's own calls (``ti.xcom_pull(...,
session=session)``, ``dag_run.get_task_instances(session=session)``), which the shim accepts and
ignores. Airflow's metadata database and its ORM models are not Ductwork's, so the session handed
out is a stand-in: using it for a query (``session.query(DagRun)``) raises at once, naming the
call and what to use instead, never a silent empty answer.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..exceptions import AirflowException

F = TypeVar("F", bound=Callable[..., Any])

NEW_SESSION: Any = None
"""The default of a ``session`` parameter that ``provide_session`` fills, as in Airflow."""


class NoMetadataSession:
    """What ``provide_session``/``create_session`` give: something to pass along, not to query."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AirflowException(
            f"session.{name}(...): Airflow's metadata database is not available under Ductwork; "
            "read runs and task instances through the context (dag_run.get_task_instances(), "
            "ti.xcom_pull(...)), Ductwork's REST API or `ductwork runs`"
        )

    def commit(self) -> None:
        """Nothing to write: Ductwork records runs itself."""

    def rollback(self) -> None:
        """Nothing was written."""

    def close(self) -> None:
        """Nothing to release."""

    def flush(self) -> None:
        """Nothing to send."""

    def __repr__(self) -> str:
        return "<no Airflow metadata session under Ductwork>"


@contextlib.contextmanager
def create_session(scoped: bool = True) -> Iterator[NoMetadataSession]:
    """``with create_session() as session:``, as in Airflow."""
    yield NoMetadataSession()


def provide_session(func: F) -> F:
    """Fill the ``session`` argument when the caller gave none (or ``None``), as Airflow's."""
    try:
        position = list(inspect.signature(func).parameters).index("session")
    except ValueError:
        raise ValueError(f"Function {func.__qualname__} has no `session` argument") from None

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("session") is not None or (len(args) > position and args[position] is not None):
            return func(*args, **kwargs)
        if len(args) > position:
            args = (*args[:position], NoMetadataSession(), *args[position + 1 :])
        else:
            kwargs["session"] = NoMetadataSession()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = ["NEW_SESSION", "NoMetadataSession", "create_session", "provide_session"]
