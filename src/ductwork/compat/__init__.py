"""Run Airflow DAG files and Luigi modules unchanged, on Ductwork's own model.

``airflow`` and ``luigi`` here are ordinary packages of Ductwork's: ``_ductwork_compat`` (loaded by
``ductwork-compat.pth`` and by Ductwork's entry points) serves them under the names ``airflow``
and ``luigi`` only when no real Airflow or Luigi can be imported (docs/adr/0007-compat-shims.md).
Everything they define is a thin layer over ``ductwork.core``: a DAG is a ``Flow``, an Airflow
operator a ``BaseOperator``, a Luigi task a class ``Task``; the engine never learns the difference.

``features`` lists what the shims support, what they accept but ignore, and what they refuse,
for parse-time errors and ``ductwork doctor``.
"""

from __future__ import annotations


def activate() -> None:
    """Make the shims importable in this process (idempotent; real packages still win)."""
    import _ductwork_compat

    _ductwork_compat.install()
