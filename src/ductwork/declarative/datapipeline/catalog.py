"""The object types of AWS Data Pipeline that Ductwork knows, and the fields of each.

Field names and slot types follow the developer guide's object reference. Each field has a
slot kind (string, integer, period, reference to some kinds of object, ...), says whether it
may be repeated (a list), and whether it has an effect here: fields that only make sense on
AWS (IAM roles, regions, log URIs, EC2 sizing) are *accepted* so that definitions load
unchanged, and ``pipelines describe`` says which ones were ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRING = "String"
INTEGER = "Integer"
DOUBLE = "Double"
BOOLEAN = "Boolean"
PERIOD = "Period"
DATETIME = "DateTime"
ENUM = "Enumeration"
REF = "Reference"

# Kinds of object, for what a reference may point at.
SCHEDULE = "schedule"
ACTIVITY = "activity"
DATANODE = "data node"
DATABASE = "database"
DATAFORMAT = "data format"
PRECONDITION = "precondition"
ACTION = "action"
RESOURCE = "resource"


@dataclass(frozen=True)
class FieldSpec:
    slot: str
    targets: tuple[str, ...] = ()
    """For references: the kinds of object it may point at."""
    multi: bool = False
    choices: tuple[str, ...] = ()
    """For enumerations: the values, compared without regard to case."""
    effective: bool = True
    """False for fields accepted only so that AWS definitions load (roles, regions...)."""


def _s(effective: bool = True, multi: bool = False) -> FieldSpec:
    return FieldSpec(STRING, multi=multi, effective=effective)


def _ref(*targets: str, multi: bool = False, effective: bool = True) -> FieldSpec:
    return FieldSpec(REF, targets=targets, multi=multi, effective=effective)


_IGNORED = _s(effective=False)

RUNNABLE: dict[str, FieldSpec] = {
    "attemptStatus": _IGNORED,
    "attemptTimeout": FieldSpec(PERIOD),
    "failureAndRerunMode": FieldSpec(ENUM, choices=("cascade", "none")),
    "lateAfterTimeout": FieldSpec(PERIOD),
    "maximumRetries": FieldSpec(INTEGER),
    "onFail": _ref(ACTION, multi=True),
    "onLateAction": _ref(ACTION, multi=True),
    "onSuccess": _ref(ACTION, multi=True),
    "pipelineLogUri": _IGNORED,
    "reportProgressTimeout": FieldSpec(PERIOD, effective=False),
    "retryDelay": FieldSpec(PERIOD),
}

SCHEDULED: dict[str, FieldSpec] = {
    **RUNNABLE,
    "schedule": _ref(SCHEDULE),
    "scheduleType": FieldSpec(ENUM, choices=("cron", "timeseries", "ondemand")),
    "dependsOn": _ref(ACTIVITY, DATANODE, multi=True),
    "maxActiveInstances": FieldSpec(INTEGER),
    "precondition": _ref(PRECONDITION, multi=True),
    "runsOn": _ref(RESOURCE, effective=False),
    "workerGroup": _s(),
}

ACTIVITY_FIELDS: dict[str, FieldSpec] = {
    **SCHEDULED,
    "input": _ref(DATANODE, multi=True),
    "output": _ref(DATANODE, multi=True),
}

PRECONDITION_FIELDS: dict[str, FieldSpec] = {
    **RUNNABLE,
    "preconditionTimeout": FieldSpec(PERIOD),
    "role": _IGNORED,
    "node": _ref(ACTIVITY, DATANODE, effective=False),
}

SQL_NODE_FIELDS: dict[str, FieldSpec] = {
    **SCHEDULED,
    "table": _s(),
    "createTableSql": _s(),
    "database": _ref(DATABASE),
    "insertQuery": _s(),
    "schemaName": _s(),
    "selectQuery": _s(),
    # The database given on the node itself, as AWS's MySqlDataNode example and its "Copy MySQL
    # Data Using the Command Line" tutorial write it (a JDBC connectionString, username, *password).
    "connectionString": _s(),
    "username": _s(),
    "*password": _s(),
    "password": _s(),
}

DATABASE_COMMON: dict[str, FieldSpec] = {
    "username": _s(),
    "password": _s(),
    "*password": _s(),
    "databaseName": _s(),
    "jdbcProperties": _s(multi=True),
    "jdbcDriverJarUri": _IGNORED,
    "region": _IGNORED,
}


@dataclass(frozen=True)
class TypeSpec:
    kind: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    required: tuple[tuple[str, ...], ...] = ()
    """Groups of fields of which one must be set (a group of one: that field is required)."""
    open: bool = False
    """Accepts any field (objects kept only so that references to them resolve)."""


TYPES: dict[str, TypeSpec] = {
    "Schedule": TypeSpec(
        SCHEDULE,
        {
            "period": FieldSpec(PERIOD),
            "startAt": FieldSpec(ENUM, choices=("FIRST_ACTIVATION_DATE_TIME",)),
            "startDateTime": FieldSpec(DATETIME),
            "endDateTime": FieldSpec(DATETIME),
            "occurrences": FieldSpec(INTEGER),
        },
        required=(("period",), ("startDateTime", "startAt")),
    ),
    "ShellCommandActivity": TypeSpec(
        ACTIVITY,
        {
            **ACTIVITY_FIELDS,
            "command": _s(),
            "scriptUri": _s(),
            "scriptArgument": _s(multi=True),
            "stage": FieldSpec(BOOLEAN),
            "stderr": _s(),
            "stdout": _s(),
        },
        required=(("command", "scriptUri"),),
    ),
    "SqlActivity": TypeSpec(
        ACTIVITY,
        {
            **ACTIVITY_FIELDS,
            "database": _ref(DATABASE),
            "script": _s(),
            "scriptUri": _s(),
            "scriptArgument": _s(multi=True),
            "queue": _IGNORED,
        },
        required=(("database",), ("script", "scriptUri")),
    ),
    "CopyActivity": TypeSpec(ACTIVITY, dict(ACTIVITY_FIELDS), required=(("input",), ("output",))),
    "RedshiftCopyActivity": TypeSpec(
        ACTIVITY,
        {
            **ACTIVITY_FIELDS,
            "insertMode": FieldSpec(ENUM, choices=("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")),
            "commandOptions": _s(multi=True),
            "queue": _IGNORED,
            "transformSql": _s(),
        },
        required=(("insertMode",), ("input",), ("output",)),
    ),
    "S3DataNode": TypeSpec(
        DATANODE,
        {
            **SCHEDULED,
            "compression": FieldSpec(ENUM, choices=("none", "gzip")),
            "dataFormat": _ref(DATAFORMAT),
            "directoryPath": _s(),
            "filePath": _s(),
            "manifestFilePath": _IGNORED,
            "s3EncryptionType": FieldSpec(ENUM, choices=("server_side_encryption", "none"), effective=False),
        },
        required=(("directoryPath", "filePath"),),
    ),
    "SqlDataNode": TypeSpec(DATANODE, dict(SQL_NODE_FIELDS), required=(("table",), ("database", "connectionString"))),
    "MySqlDataNode": TypeSpec(DATANODE, dict(SQL_NODE_FIELDS), required=(("table",), ("database", "connectionString"))),
    "RedshiftDataNode": TypeSpec(
        DATANODE,
        {
            **SCHEDULED,
            "database": _ref(DATABASE),
            "tableName": _s(),
            "createTableSql": _s(),
            "primaryKeys": _s(multi=True),
            "schemaName": _s(),
        },
        required=(("database",), ("tableName",)),
    ),
    "JdbcDatabase": TypeSpec(
        DATABASE,
        {**DATABASE_COMMON, "connectionString": _s(), "jdbcDriverClass": _IGNORED},
        required=(("connectionString",),),
    ),
    "RdsDatabase": TypeSpec(DATABASE, {**DATABASE_COMMON, "rdsInstanceId": _s()}, required=(("rdsInstanceId",),)),
    "RedshiftDatabase": TypeSpec(
        DATABASE,
        {**DATABASE_COMMON, "clusterId": _s(), "connectionString": _s()},
        required=(("clusterId", "connectionString"),),
    ),
    "CSV": TypeSpec(DATAFORMAT, {"column": _s(multi=True), "escapeChar": _s()}),
    "TSV": TypeSpec(
        DATAFORMAT,
        {"column": _s(multi=True), "columnSeparator": _s(), "escapeChar": _s(), "recordSeparator": _s()},
    ),
    "Custom": TypeSpec(
        DATAFORMAT,
        {"column": _s(multi=True), "columnSeparator": _s(), "recordSeparator": _s()},
        required=(("columnSeparator",),),
    ),
    "ShellCommandPrecondition": TypeSpec(
        PRECONDITION,
        {
            **PRECONDITION_FIELDS,
            "command": _s(),
            "scriptUri": _s(),
            "scriptArgument": _s(multi=True),
            "stderr": _s(),
            "stdout": _s(),
        },
        required=(("command", "scriptUri"),),
    ),
    "S3KeyExists": TypeSpec(PRECONDITION, {**PRECONDITION_FIELDS, "s3Key": _s()}, required=(("s3Key",),)),
    "S3PrefixNotEmpty": TypeSpec(PRECONDITION, {**PRECONDITION_FIELDS, "s3Prefix": _s()}, required=(("s3Prefix",),)),
    "Exists": TypeSpec(PRECONDITION, dict(PRECONDITION_FIELDS)),
    "SnsAlarm": TypeSpec(
        ACTION,
        {"message": _s(), "subject": _s(), "topicArn": _s(), "role": _IGNORED, "node": _ref(effective=False)},
        required=(("message",), ("subject",), ("topicArn",)),
    ),
    "Terminate": TypeSpec(ACTION, {"node": _ref(effective=False)}),
    "Ec2Resource": TypeSpec(RESOURCE, open=True),
}

REFUSED: dict[str, str] = {
    **{
        name: "it needs Amazon EMR, which Ductwork does not run; use a ShellCommandActivity that calls your "
        "own cluster, or a Ductwork operator"
        for name in (
            "EmrActivity",
            "PigActivity",
            "HiveActivity",
            "HiveCopyActivity",
            "HadoopActivity",
            "EmrCluster",
            "EmrConfiguration",
        )
    },
    **{
        name: "DynamoDB is not supported; keep the data in S3 or a SQL database"
        for name in (
            "DynamoDBDataNode",
            "DynamoDBDataExists",
            "DynamoDBTableExists",
            "DynamoDBDataFormat",
            "DynamoDBExportDataFormat",
        )
    },
    "HttpProxy": "proxies are configured in the environment of the workers, not in the pipeline",
    "ShellScriptConfig": "EMR bootstrap scripts are not supported",
    "Property": "EMR configuration properties are not supported",
    "RegEx": "EMR data format regular expressions are not supported",
}

NOT_INHERITED = {"id", "name", "type", "parent"}
"""Fields every object has of its own."""

ALL_FIELDS: dict[str, FieldSpec] = {}
for _spec in TYPES.values():
    for _name, _field in _spec.fields.items():
        ALL_FIELDS.setdefault(_name, _field)
DEFAULT_ONLY: dict[str, FieldSpec] = {"role": _IGNORED, "resourceRole": _IGNORED}
"""Fields found on the Default object of AWS definitions that no runnable object uses here."""


def is_user_field(name: str) -> bool:
    """User-defined fields: ``my`` then a capital letter or an underscore (``myBucket``), with a
    ``*`` before when AWS masks the value (``*myPassword``)."""
    name = name[1:] if name.startswith("*") else name
    return len(name) > 2 and name.startswith("my") and (name[2].isupper() or name[2] == "_")


def is_runtime_field(name: str) -> bool:
    return name.startswith("@")
