"""`make demo FEED=gateway`: the demo's gateway config (deploy/local/demo.py `write_gateway_config`, from
examples/ingest/gateway.yaml and examples/contracts.yaml) in a real `slamon ingest` on a real broker, fed by the
demo's vendor replay (examples/ingest/post_fixtures.py) with six hours of fixture time compressed 3600x.

Every delivery is signed right (no 401), only the fixtures meant to be refused are refused, and the events on
the topic are live: stamped within the replay's minutes, and a worker's engine fed them in partition order
refuses none as late (the fixtures as they are span six hours: several vendors feed one client, and its
allowed lateness is one hour).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime

import orjson
import pytest
import yaml

from deploy.local.demo import DEFAULT_CONTRACTS, POST_FIXTURES, ROOT, write_gateway_config
from monitor.contracts import load_contracts
from monitor.replay import replay_lines
from tests.ingest.gateway_support import create_topics
from tests.support.pipeline import read_topic
from tests.support.procs import free_port

pytestmark = pytest.mark.integration


def _us(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1_000_000)


def test_demo_vendor_replay_through_the_gateway_arrives_live(kafka_broker, tmp_path):
    from streams.config import load_settings

    port = free_port()
    config = write_gateway_config(tmp_path, DEFAULT_CONTRACTS, kafka_broker.bootstrap, port)
    tag = uuid.uuid4().hex[:8]
    data = yaml.safe_load(config.read_text())
    data["topics"] = {"events": f"demo-{tag}.events", "deadletter": f"demo-{tag}.deadletter"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    create_topics(kafka_broker.bootstrap, data["topics"]["events"], data["topics"]["deadletter"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "gateway.log", "wb") as log:
        gateway = subprocess.Popen([sys.executable, "-m", "slamon.cli", "ingest", "--config", str(config)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            time.sleep(0.3)
        started_us = time.time_ns() // 1000
        out = subprocess.run([sys.executable, str(POST_FIXTURES), "--config", str(config), "--speed", "3600",
                              "--delay", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        ended_us = time.time_ns() // 1000
    finally:
        gateway.terminate()
        gateway.wait(30)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = [line.split(" ", 3) for line in out.stdout.splitlines()]
    assert len(lines) > 90
    refused = {(name, fixture) for status, name, fixture, _ in lines if status == "422"}
    assert all(fixture.startswith("9") for _, fixture in refused), refused  # only the fixtures meant to be
    accepted = sum(orjson.loads(answer)["accepted"] for status, _, _, answer in lines if status == "200")
    assert accepted > 60

    records = read_topic(load_settings(None, kafka={"bootstrap_servers": kafka_broker.bootstrap}),
                         data["topics"]["events"], accepted, exact=False)  # (a 204 does not say how many)
    events = [orjson.loads(r.value) for r in records]
    assert {e["client"] for e in events} == {"acme-retail", "globex-bank"}  # (no zenith-health fixture)
    stamps = [_us(e["ts"]) for e in events]
    # live: within the replay (6h20 of fixtures / 3600 = 6.3 s), but for the events a connector derives from a
    # duration given as a number, which is not compressed (Genesys: the wrap-up's start = its end - 30 s)
    assert started_us - 300_000_000 <= min(stamps) and max(stamps) <= ended_us + 5_000_000, (started_us, stamps)
    assert sum(started_us - 2_000_000 <= s for s in stamps) >= len(stamps) - 5
    replay = replay_lines([r.value for r in records], load_contracts(DEFAULT_CONTRACTS), ended_us)
    assert replay.rejected.get("late", 0) == 0, replay.examples
    assert replay.accepted >= len(events) - sum(replay.rejected.values()) - replay.duplicates
    assert any(r.decided for r in replay.records)
