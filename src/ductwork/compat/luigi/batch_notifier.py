"""``luigi.batch_notifier``: Luigi's batched failure e-mails, with ``[scheduler] batch_emails =
true`` and the ``[batch_email]`` settings.

Luigi's central scheduler collects the failures and scheduling failures its workers report and
sends each owner (``[email] receiver`` and the tasks' ``owner_email``) one e-mail every
``email_interval`` minutes, grouped by ``batch_mode``, with the last ``error_messages``
explanations of each group cut to their last ``error_lines`` lines, tasks with the same
explanation together (``group_by_error_messages``). Builds run in-process here, with no
scheduler that outlives them, so the batch is kept in the Ductwork home between builds
(``luigi/batch-email.json``, under a lock): each build adds what failed in it, and the build
that ends once ``email_interval`` minutes have passed since the last batch was sent (or when
none was ever sent) sends it. The settings were ignored: every failure was e-mailed on its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import parameter as p
from .notifications import email, send_email
from .task import Config

logger = logging.getLogger("luigi-interface")


class batch_email(Config):
    email_interval = p.IntParameter(default=60, description="Number of minutes between e-mail sends (default: 60)")
    batch_mode = p.ChoiceParameter(
        default="unbatched_params",
        choices=("family", "all", "unbatched_params"),
        description="How failures are grouped in an e-mail: by task family, by family and "
        "non-batched parameters, or only identical tasks together",
    )
    error_lines = p.IntParameter(default=20, description="Lines shown of each error message; 0 shows all")
    error_messages = p.IntParameter(default=1, description="Error messages shown for each group")
    group_by_error_messages = p.BoolParameter(default=True, description="Group tasks with the same error message")


def _plural(template: str, number: int, plural: str = "s") -> str:
    return "" if number == 0 else template.format(number, "" if number == 1 else plural)


class BatchNotifier:
    """The batch kept at ``path``: ``add_failure``/``add_scheduling_fail`` while a build
    ends, then ``update`` sends it when it is due. Keys are what ``batch_mode`` groups by."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config = batch_email()
        receiver = email().receiver
        self.default_owners = {a.strip() for a in receiver.split(",") if a.strip()} if receiver else set()
        self.last_sent: float | None = None
        self.owners: dict[str, dict[str, dict[str, Any]]] = {}

    def key(self, task_name: str, family: str, unbatched_args: Mapping[str, Any]) -> str:
        mode = self.config.batch_mode
        if mode == "all":
            return task_name
        if mode == "family":
            return family
        return f"{family}({', '.join(f'{k}={v}' for k, v in unbatched_args.items())})"

    def _entries(self, key: str, owners: Iterable[str]) -> Iterator[dict[str, Any]]:
        for owner in self.default_owners | {o for o in owners if o}:
            yield self.owners.setdefault(owner, {}).setdefault(
                key, {"failures": 0, "disables": 0, "scheduling": 0, "expls": []}
            )

    def _enqueue(self, entry: dict[str, Any], expl: str) -> None:
        """The last ``error_messages`` different explanations, the newest last (Luigi's queue)."""
        expls = [e for e in entry["expls"] if e != expl] + [expl]
        entry["expls"] = expls[-self.config.error_messages :] if self.config.error_messages > 0 else []

    def add_failure(
        self, task_name: str, family: str, unbatched_args: Mapping[str, Any], expl: str, owners: Sequence[str]
    ) -> None:
        for entry in self._entries(self.key(task_name, family, unbatched_args), owners):
            entry["failures"] += 1
            self._enqueue(entry, expl)

    def add_scheduling_fail(
        self, task_name: str, family: str, unbatched_args: Mapping[str, Any], expl: str, owners: Sequence[str]
    ) -> None:
        for entry in self._entries(self.key(task_name, family, unbatched_args), owners):
            entry["scheduling"] += 1
            self._enqueue(entry, expl)

    # --- kept between builds -------------------------------------------------------------
    @contextlib.contextmanager
    def kept(self) -> Iterator[BatchNotifier]:
        """The batch as kept, with this build's additions merged in and written back, under a
        lock (two builds may end at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            added, self.owners = self.owners, {}
            try:
                data = json.loads(self.path.read_text())
                self.last_sent = data.get("last_sent")
                self.owners = data.get("owners", {})
            except (OSError, ValueError, AttributeError):
                pass
            for owner, keys in added.items():
                for key, entry in keys.items():
                    kept = self.owners.setdefault(owner, {}).setdefault(
                        key, {"failures": 0, "disables": 0, "scheduling": 0, "expls": []}
                    )
                    for count in ("failures", "disables", "scheduling"):
                        kept[count] += entry[count]
                    for expl in entry["expls"]:
                        self._enqueue(kept, expl)
            yield self
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"last_sent": self.last_sent, "owners": self.owners}))
            os.replace(tmp, self.path)

    def update(self, now: float | None = None) -> None:
        """Send the batch if ``email_interval`` minutes have passed since the last one (or none
        was sent yet); otherwise say when it will go."""
        now = time.time() if now is None else now
        if not any(self.owners.values()):
            return
        due = self.last_sent is None or now - self.last_sent >= 60 * self.config.email_interval
        if not due:
            assert self.last_sent is not None
            when = time.strftime("%H:%M", time.localtime(self.last_sent + 60 * self.config.email_interval))
            logger.info("Batched failure e-mail kept until %s, when a build ends ([batch_email] email_interval)", when)
            return
        for owner, entries in self.owners.items():
            self._send(owner, entries)
        self.owners = {}
        self.last_sent = now

    # --- the e-mail ------------------------------------------------------------------------
    def _send(self, owner: str, entries: Mapping[str, Mapping[str, Any]]) -> None:
        failures = sum(e["failures"] for e in entries.values())
        disables = sum(e["disables"] for e in entries.values())
        scheduling = sum(e["scheduling"] for e in entries.values())
        counts = [
            _plural("{} failure{}", failures),
            _plural("{} disable{}", disables),
            _plural("{} scheduling failure{}", scheduling),
        ]
        base = ", ".join(filter(None, counts))
        if not base:
            return
        prefix = "" if owner in self.default_owners else "Your tasks have "
        subject = f"Luigi: {prefix}{base} in the last {self.config.email_interval} minutes"
        try:
            send_email(subject, self.body(entries), email().sender, (owner,))
        except Exception as exc:
            logger.error("Not able to send the batched failure e-mail to %s: %s", owner, exc)

    def body(self, entries: Mapping[str, Mapping[str, Any]]) -> str:
        html = email().format == "html"
        described = {key: self._expl_body(entry["expls"], html) for key, entry in entries.items()}
        if self.config.group_by_error_messages:
            grouped: dict[str, list[str]] = {}
            for key, text in described.items():
                grouped.setdefault(text, []).append(key)
            groups = [(keys, text) for text, keys in grouped.items()]
        else:
            groups = [([key], text) for key, text in described.items()]

        def order(keys: Sequence[str]) -> tuple[int, int, str]:
            failed = sum(entries[k]["failures"] + entries[k]["scheduling"] for k in keys)
            return -failed, -sum(entries[k]["disables"] for k in keys), min(keys)

        lines: list[str] = []
        for keys, text in sorted(groups, key=lambda g: order(g[0])):
            tasks = [self._task_line(k, entries[k]) for k in sorted(keys, key=lambda k: order([k]))]
            lines.append("<li>" + "\n<br>".join(tasks) if html else "- " + "\n  ".join(tasks))
            lines.append(text)
        body = "\n".join(filter(None, lines)).rstrip()
        return f"<ul>\n{body}\n</ul>" if html else body

    def _expl_body(self, expls: Sequence[str], html: bool) -> str:
        parts = [self._format_expl(e, html) for e in expls]
        if parts and not html:
            parts.append("")
        return "\n".join(parts)

    def _format_expl(self, expl: str, html: bool) -> str:
        lines = expl.rstrip().split("\n")[-self.config.error_lines :]  # 0: every line
        if html:
            return "<pre>{}</pre>".format("\n".join(lines))
        return "\n" + "\n".join(f"      {line}" for line in lines)

    @staticmethod
    def _task_line(key: str, entry: Mapping[str, Any]) -> str:
        counts = [
            _plural("{} failure{}", entry["failures"]),
            _plural("{} disable{}", entry["disables"]),
            _plural("{} scheduling failure{}", entry["scheduling"]),
        ]
        return f"{key} ({', '.join(filter(None, counts))})"
