"""A `slamon ingest` process for the integration tests and the bench: config from the fixtures' endpoints,
secrets in files, own topics on the test broker, signed deliveries like the vendors send them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import yaml

from ingest.auth import sign_headers
from ingest.connectors import connector
from tests.ingest.helpers import endpoint
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = Path(__file__).with_name("contracts.yaml")
HTTP_VENDORS = ("zendesk", "servicenow", "jira", "amazon_connect", "twilio", "genesys", "alertmanager", "generic")


def create_topics(bootstrap: str, events: str, deadletter: str, partitions: int = 4) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=[bootstrap])
    try:
        admin.create_topics([NewTopic(events, partitions, 1), NewTopic(deadletter, 1, 1)])
    finally:
        admin.close()


class GatewayProcess:
    def __init__(self, tmp: Path, bootstrap: str, vendors: list[str], *, create: bool = True, **settings) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.events_topic, self.deadletter_topic = f"ingest-{tag}.events", f"ingest-{tag}.deadletter"
        if create:
            create_topics(bootstrap, self.events_topic, self.deadletter_topic)
        self.port = free_port()
        self.secrets: dict[str, bytes] = {}
        self.schemes: dict[str, str] = {}
        self.headers: dict[str, str | None] = {}
        endpoints = {}
        for vendor in vendors:
            ep = endpoint(vendor)
            secret = f"s3cret-{vendor}-{tag}".encode()
            (tmp / f"{vendor}.secret").write_bytes(secret + b"\n")
            ep["auth"] = {"secret_file": f"{vendor}.secret", **ep.get("auth", {})}
            self.secrets[vendor] = secret
            self.schemes[vendor] = ep["auth"].get("scheme") or connector(ep["connector"]).AUTH
            self.headers[vendor] = ep["auth"].get("header")
            endpoints[vendor] = ep
        config = {"version": 1, "contracts": str(CONTRACTS), "listen": f"127.0.0.1:{self.port}",
                  "kafka": {"bootstrap_servers": bootstrap},
                  "topics": {"events": self.events_topic, "deadletter": self.deadletter_topic},
                  "endpoints": endpoints, **settings}
        self.config = tmp / "gateway.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = tmp / "gateway.log"
        self.proc: subprocess.Popen | None = None
        self.argv = [sys.executable, "-m", "ingest"]  # (the bench swaps in a gateway with a stub producer)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_kafka: bool = True) -> GatewayProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*self.argv, "ingest", "--config", str(self.config)],
                                     cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gateway exited:\n{self.tail()}"
            status, _ = self.get("/healthz")
            if status == 200 or (status == 503 and not wait_kafka):
                return self
            time.sleep(0.2)
        raise AssertionError(f"gateway not ready:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._fh.close()
            self.proc = None

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:
            return 0, b""

    def post(self, vendor: str, body: bytes, *, sign: bool = True, headers: dict | None = None,
             timeout: float = 30) -> tuple[int, bytes, dict]:
        url = f"{self.base}/hooks/{vendor}"
        module = connector(endpoint(vendor)["connector"])
        h = {"Content-Type": "application/x-www-form-urlencoded" if module.BODY == "form" else "application/json"}
        if sign:
            h.update(sign_headers(self.schemes[vendor], self.secrets[vendor], body, url, header=self.headers[vendor]))
        h.update(headers or {})
        req = urllib.request.Request(url, data=body, method="POST", headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
