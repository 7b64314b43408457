"""``airflow.providers.standard.operators.branch``: ``airflow.operators.branch``'s shims."""

from __future__ import annotations

from ....operators.branch import BaseBranchOperator, BranchMixIn

__all__ = ["BaseBranchOperator", "BranchMixIn"]
