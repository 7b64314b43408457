"""SQL on any SQLAlchemy database: run statements, wait on a query, copy between databases, and
mark table loads complete."""

from ductwork.integrations.sql._engine import split_statements
from ductwork.integrations.sql.operators import SqlOperator, SqlTransferOperator
from ductwork.integrations.sql.sensors import SqlSensor
from ductwork.integrations.sql.targets import SqlTableTarget

__all__ = ["SqlOperator", "SqlSensor", "SqlTableTarget", "SqlTransferOperator", "split_statements"]
