"""Local stand-ins for the services the cloud-inventory example talks to, for ``make demo``.

Starts a real SMTP server (aiosmtpd) and an HTTP server that accepts webhook calls, both on
127.0.0.1, and writes what they receive under ``--state-dir``: ``mail/NNN.eml`` and
``webhooks.jsonl``. Once both listen it writes ``standins.env``: the ``DUCTWORK_CONN_*`` lines
that point the example at them. Runs until SIGTERM or SIGINT.

    python scripts/standins.py --state-dir demo-output/standins &
    . demo-output/standins/standins.env
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Mailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        (self.folder / f"{self.count:03d}.eml").write_bytes(envelope.original_content)
        print(f"standins: mail {self.count} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 OK"


def webhook_server(log: Path) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with log.open("a") as fh:
                fh.write(json.dumps({"path": self.path, "body": body.decode("utf-8", "replace")}) + "\n")
            print(f"standins: webhook call to {self.path}", flush=True)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def free_port() -> int:
    """aiosmtpd cannot listen on port 0 (it connects to itself to check): pick a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=Path("demo-output/standins"))
    args = parser.parse_args()
    state: Path = args.state_dir
    (state / "mail").mkdir(parents=True, exist_ok=True)
    env_file = state / "standins.env"
    env_file.unlink(missing_ok=True)

    from aiosmtpd.controller import Controller

    mailbox = Mailbox(state / "mail")
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = webhook_server(state / "webhooks.jsonl")
    threading.Thread(target=http.serve_forever, daemon=True).start()
    http_port = http.server_address[1]
    env_file.write_text(
        f"export DUCTWORK_CONN_SMTP_DEFAULT='smtp://127.0.0.1:{smtp_port}?sender=inventory%40example.com'\n"
        f"export DUCTWORK_CONN_SLACK_INVENTORY='http://127.0.0.1:{http_port}/services/T000/B000/demo-secret'\n"
    )
    print(f"standins: SMTP on 127.0.0.1:{smtp_port}, webhooks on 127.0.0.1:{http_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    http.shutdown()
    smtp.stop()


if __name__ == "__main__":
    main()
