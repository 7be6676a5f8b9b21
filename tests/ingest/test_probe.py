"""`slamon probe`: checks against real local servers, and the events a prober process sends to Kafka."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import yaml

from ingest.errors import IngestConfigError
from ingest.probe import Check, check_once, load_probe_config
from monitor.events import Rejection, decode_event
from tests.ingest.gateway_support import CONTRACTS, ROOT, create_topics
from tests.support.procs import free_port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/health" else 503
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def _run(check: Check) -> tuple[str, float]:
    import aiohttp

    async def go():
        async with aiohttp.ClientSession() as session:
            return await check_once(check, session)

    return asyncio.run(go())


def test_checks(server):
    up = dict(client="acme", service="portal", timeout=2)
    assert _run(Check(url=f"http://127.0.0.1:{server}/health", **up))[0] == "up"
    assert _run(Check(url=f"http://127.0.0.1:{server}/broken", **up))[0] == "down"  # 503
    assert _run(Check(tcp=f"127.0.0.1:{server}", **up))[0] == "up"
    assert _run(Check(tcp=f"127.0.0.1:{free_port()}", **up))[0] == "down"  # refused
    assert _run(Check(url=f"http://127.0.0.1:{server}/health", slow_ms=0.001, **up))[0] == "down"


def test_config_checks_the_contract(tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(yaml.safe_dump({"version": 1, "contracts": str(CONTRACTS),
                                   "checks": [{"client": "acme", "service": "portal", "url": "http://x/"}]}))
    config = load_probe_config(cfg)
    assert config.checks[0].interval == 60 and config.checks[0].timeout == 10
    cfg.write_text(yaml.safe_dump({"version": 1, "contracts": str(CONTRACTS),
                                   "checks": [{"client": "acme", "service": "shop", "url": "http://x/"}]}))
    with pytest.raises(IngestConfigError, match="no uptime SLA for service 'shop'"):
        load_probe_config(cfg)


@pytest.mark.integration
@pytest.mark.slow
def test_prober_sends_probe_events(kafka_broker, tmp_path, server):
    from streams.config import load_settings
    from tests.support.pipeline import read_topic

    topic = f"probe-{os.getpid()}-{time.time_ns()}.events"
    create_topics(kafka_broker.bootstrap, topic, topic + ".dl")
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(yaml.safe_dump({
        "version": 1, "contracts": str(CONTRACTS), "kafka": {"bootstrap_servers": kafka_broker.bootstrap},
        "topics": {"events": topic, "deadletter": topic + ".dl"},
        "checks": [{"client": "acme", "service": "portal", "url": f"http://127.0.0.1:{server}/health",
                    "interval": "1s"},
                   {"client": "acme", "service": "portal", "tcp": f"127.0.0.1:{free_port()}", "interval": 1}]}))
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "probe", "--config", str(cfg)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        settings = load_settings(None, kafka={"bootstrap_servers": kafka_broker.bootstrap})
        records = read_topic(settings, topic, 6, exact=False, timeout=40)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    events = [orjson.loads(r.value) for r in records]
    assert len(events) >= 6, out.decode(errors="replace")[-2000:]
    assert {e["status"] for e in events} == {"up", "down"}
    assert all(not isinstance(decode_event(r.value, {"acme"}), Rejection) for r in records)
    # both checks of the one service probe the same grid instants under the same ids: counted once each
    assert len({e["event_id"] for e in events}) < len(events)
