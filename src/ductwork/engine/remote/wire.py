"""The messages between a scheduler and remote workers, as JSON data.

A try request travels as a plain dict (Celery's JSON serializer; Flower and ``celery inspect``
show it as it is): the try's key and the run's primary key, the node and the run as plain data,
where its code is (bundle hash or git commit, and the flow file's path inside the flows folder),
where its log goes and where to send the end (``reply_to``). An end is the same key plus the
outcome (``journal.encode_outcome``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.core.schedule import get_timezone, timezone_name
from ductwork.engine.executor import TryKey, TryRequest
from ductwork.store import codec

TASK_NAME = "ductwork.run_try"
BATCH_TASK_NAME = "ductwork.run_tries"
"""Several try requests in one message (a list), run one after another by one pool process."""
BATCH_SECONDS = 1.0
"""A batch's tries not started after this long are handed back to their queue one per message,
so a batch of long tries costs the other slots at most this much of their work."""
REPLY_QUEUE_EXPIRES_MS = 24 * 3600 * 1000
"""A scheduler's reply queue goes away after a day unused: a scheduler that died leaves one,
and workers may still send it the ends of the tries it had handed out (they are in the
database too, where the next scheduler reads them)."""

VERSION = 1


@dataclass(frozen=True)
class CodeRef:
    """Where a try's code is: a bundle (``kind="bundle"``, ``ref`` its hash) or a git commit
    (``kind="git"``, ``ref`` the commit, ``url`` the repository, ``subdir`` the flows folder
    inside it); ``path`` is the flow file relative to the flows folder."""

    kind: str
    ref: str
    path: str | None
    url: str = ""
    subdir: str = ""


@dataclass(frozen=True)
class RemoteTry:
    request: TryRequest
    run_pk: int
    code: CodeRef | None
    reply_to: str
    flows_root: str | None
    """The scheduler's flows folder: paths under it (class tasks' files) are mapped into the bundle."""


def encode_request(
    request: TryRequest, *, run_pk: int, code: CodeRef | None, reply_to: str, flows_root: str | None
) -> dict[str, Any]:
    run = request.run
    return {
        "v": VERSION,
        "key": [request.key.run_key, request.key.task_id, request.key.try_number],
        "run_pk": run_pk,
        "node": request.node.to_dict(),
        "run": {
            "flow_id": run.flow_id,
            "run_id": run.run_id,
            "logical_date": run.logical_date.isoformat(),
            "data_interval_start": run.data_interval_start.isoformat(),
            "data_interval_end": run.data_interval_end.isoformat(),
            "params": codec.encode(dict(run.params)),
            "conf": codec.encode(dict(run.conf)),
            "run_type": run.run_type,
            "timezone": _tz_name(run.timezone),
        },
        "downstream": list(request.downstream),
        "log": request.log_path,
        "max_tries": request.max_tries,
        "resumed": request.resumed,
        "param_sources": dict(request.param_sources) if request.param_sources is not None else None,
        "code": None if code is None else code.__dict__.copy(),
        "reply_to": reply_to,
        "flows_root": flows_root,
    }


def decode_request(data: Mapping[str, Any]) -> RemoteTry:
    if data.get("v") != VERSION:
        raise ValueError(f"a try request of version {data.get('v')!r}; this worker reads version {VERSION}")
    run_key, task_id, try_number = data["key"]
    r = data["run"]
    run = RunInfo(
        r["flow_id"],
        r["run_id"],
        dt.datetime.fromisoformat(r["logical_date"]),
        dt.datetime.fromisoformat(r["data_interval_start"]),
        dt.datetime.fromisoformat(r["data_interval_end"]),
        params=codec.decode(r["params"]),
        conf=codec.decode(r["conf"]),
        run_type=r["run_type"],
        timezone=_tz(r["timezone"]),
    )
    request = TryRequest(
        TryKey(run_key, task_id, int(try_number)),
        NodeSpec.from_dict(data["node"]),
        run,
        tuple(data["downstream"]),
        data.get("log"),
        max_tries=data.get("max_tries"),
        resumed=bool(data.get("resumed")),
        param_sources=data.get("param_sources"),
    )
    code = data.get("code")
    return RemoteTry(
        request,
        int(data["run_pk"]),
        CodeRef(**code) if code else None,
        str(data.get("reply_to") or ""),
        data.get("flows_root"),
    )


def requests_of(task_name: str, args: Any) -> list[dict[str, Any]]:
    """The try requests a message of ``task_name`` with Celery ``args`` carries."""
    if not args:
        return []
    if task_name == TASK_NAME:
        return [args[0]]
    if task_name == BATCH_TASK_NAME:
        return list(args[0])
    return []


def try_label(data: Mapping[str, Any]) -> str:
    """ "flow/run task #try" for a request, for worker rows and log lines."""
    run_key, task_id, try_number = data["key"]
    return f"{run_key} {task_id} #{try_number}"


def message_label(payloads: Sequence[Mapping[str, Any]], *, most: int = 3) -> str:
    """What a message carries, as Celery's own tools show its arguments (``celery inspect
    active``, Flower): the tries, not a cut-off dump of their requests. Given to ``send_task``
    as ``argsrepr``, it also spares Celery a ``saferepr`` of the whole payload per message."""
    labels = [try_label(p) for p in payloads[:most]]
    if len(payloads) > most:
        labels.append(f"... {len(payloads) - most} more")
    return f"[{', '.join(labels)}]" if len(payloads) > 1 else (labels[0] if labels else "")


def _tz_name(tz: dt.tzinfo) -> str:
    """As flows record their zone: an IANA name, ``UTC`` or a fixed offset (``UTC+01:00``),
    which was sent as ``UTC`` and moved every date a worker rendered by the offset."""
    return timezone_name(tz)


def _tz(name: str) -> dt.tzinfo:
    return get_timezone(name)
