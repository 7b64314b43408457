"""``airflow.utils.log``: the logging mixin operators, hooks and user classes build on."""
