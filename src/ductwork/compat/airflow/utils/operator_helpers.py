"""``airflow.utils.operator_helpers.context_to_airflow_vars``: the try's identity for a program's
environment (``AIRFLOW_CTX_DAG_ID``...), as custom operators pass it to the commands they run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ENV_PREFIX = "AIRFLOW_CTX_"


def context_to_airflow_vars(context: Mapping[str, Any], in_env_var_format: bool = False) -> dict[str, str]:
    """The DAG id, task id, logical date, try number, run id, owner and e-mail of the try, those
    that are set: ``AIRFLOW_CTX_DAG_ID`` with ``in_env_var_format``, else ``airflow.ctx.dag_id``."""
    from ..operators.bash import context_env

    values = context_env(context)
    if in_env_var_format:
        return values
    return {f"airflow.ctx.{key[len(_ENV_PREFIX) :].lower()}": value for key, value in values.items()}


__all__ = ["context_to_airflow_vars"]
