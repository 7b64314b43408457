"""Operators, sensors and targets for the systems a pipeline talks to, one package per backend.

==============  ============================================================  ==========================
package         what it has                                                   extras to install
==============  ============================================================  ==========================
``fs``          ``FileTarget`` on any fsspec storage, formats, ``FileSensor``  fs, s3, gcs, hdfs, parquet
``sql``         ``SqlOperator``, ``SqlSensor``, ``SqlTransferOperator``,       postgres, mysql
                ``SqlTableTarget``
``http``        ``HttpOperator``, ``HttpSensor``, ``WebhookNotifier``           http
``email``       ``EmailOperator``, ``send_email``, ``email_on_failure``,        (none)
                ``FlowFailureEmail`` (the flow option ``on_failure_email``)
``slack``       ``SlackWebhookOperator``, ``slack_notifier``                    slack
``docker``      ``DockerOperator``                                            docker
``kubernetes``  ``KubernetesPodOperator``                                     kubernetes
``flows``       ``ExternalTaskSensor``, ``TriggerFlowOperator``                 (none)
==============  ============================================================  ==========================

Importing any of these packages is cheap and does no I/O: the client libraries are imported
when a task runs (or a target is used), and a missing one is reported as a
``MissingDependencyError`` that names the extra to install (``pip install 'ductwork[s3]'``).
Operators that reach a system take either explicit settings (``url=``, ``smtp=``) or a
connection id (``conn_id=``) resolved when the task runs (``ductwork.core.connections``).
"""
