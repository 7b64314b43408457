"""``airflow.providers.standard``: Airflow 3's home of the standard operators and sensors (and
the ``apache-airflow-providers-standard`` package of Airflow 2.10): the same shims as their
Airflow 2 paths (``airflow.operators.bash`` and ``airflow.providers.standard.operators.bash``
give the same ``BashOperator``)."""
