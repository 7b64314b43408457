"""Errors the store raises on purpose; all are ``DuctworkError``s, so the CLI prints them cleanly.

::

    DuctworkError
    └── StoreError                     something about the metadata database
        ├── DatabaseUnreachableError   the server does not answer (names host and port)
        ├── DriverMissingError         the URL needs a driver that is not installed (names the extra)
        ├── SchemaMismatchError        the database is behind or ahead of this code
        ├── SchemaGoneError            the tables went away under a running service
        ├── RunExistsError             a run id is already taken within its flow
        ├── PoolInUseError             the pool cannot be deleted
        └── ResultSerializationError   a task result cannot be stored (names task and key)

Lookups of things that do not exist raise ``ductwork.errors.NotFoundError``.
"""

from __future__ import annotations

from ductwork.errors import DuctworkError


class StoreError(DuctworkError):
    """Root of the store's own errors."""


class DatabaseUnreachableError(StoreError):
    """The database server could not be reached or refused the connection."""


class DriverMissingError(StoreError):
    """The database URL names a driver whose Python package is not installed."""


class SchemaGoneError(StoreError):
    """Ductwork's tables (or a running service's own row) went away while it ran: dropped, or
    reset by a process that did not see it. Waiting does not bring them back."""


class SchemaMismatchError(StoreError):
    """The database schema revision is not the one this code expects."""

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(message)


class RunExistsError(StoreError):
    """A run with this run id already exists in the flow."""


class PoolInUseError(StoreError):
    """A pool that must stay (``default_pool``) was asked to be deleted."""


class ResultSerializationError(StoreError, TypeError):
    """A task result cannot be serialized by the configured serializer."""

    def __init__(self, message: str, *, task_id: str, key: str) -> None:
        self.task_id = task_id
        self.key = key
        super().__init__(message)
