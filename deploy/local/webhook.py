"""An Alertmanager webhook receiver that prints every alert to the console (the demo's on-call pager).

    python -m deploy.local.webhook [--host 0.0.0.0] [--port 8080] [--record FILE]

One line per alert of each notification:

    ALERT FIRING   page   SlamonBreachImminent globex-bank/first-response priority=P1: <summary>

Standard library only. Used in-process by the local demo and as the `alert-console` service of
docker-compose.yml.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXTRA_LABELS = ("priority", "service", "queue", "reason", "instance", "partition")


def format_alert(alert: dict, default_status: str = "?") -> str:
    labels, notes = alert.get("labels", {}), alert.get("annotations", {})
    status = str(alert.get("status", default_status)).upper()
    where = f"{labels.get('client', '-')}/{labels.get('sla', '-')}"
    extra = " ".join(f"{k}={labels[k]}" for k in EXTRA_LABELS if k in labels)
    return (f"ALERT {status:<8} {labels.get('severity', '?'):<6} {labels.get('alertname', '?')} {where}"
            f"{' ' + extra if extra else ''}: {notes.get('summary', '')}")


class ConsoleWebhook:
    """Prints each alert of each notification with `say`; appends the raw notifications to `record`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, record: Path | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.record = record
        self.say = say or (lambda line: print(line, flush=True))
        self.notifications = 0
        self.first_alert_at: float | None = None  # time.monotonic() of the first firing alert
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(ValueError):
                    outer.received(json.loads(body or b"{}"))

            def do_GET(self):  # health check
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok\n")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> ConsoleWebhook:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, doc: dict) -> None:
        with self._lock:
            self.notifications += 1
            if self.record is not None:
                with open(self.record, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(doc) + "\n")
            for alert in doc.get("alerts", []):
                line = format_alert(alert, doc.get("status", "?"))
                self.say(line)
                if self.first_alert_at is None and line.startswith("ALERT FIRING"):
                    self.first_alert_at = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.local.webhook", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--record", type=Path, help="append every notification (JSON) to this file")
    args = p.parse_args(argv)
    hook = ConsoleWebhook(args.host, args.port, args.record).start()
    print(f"webhook: listening on {args.host}:{hook.port}; alerts are printed here", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    hook.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
