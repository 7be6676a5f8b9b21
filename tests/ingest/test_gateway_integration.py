"""`slamon ingest` as a process, real HTTP requests, a real Kafka broker.

- every fixture of every HTTP connector, signed as its vendor signs: 2xx for the mappable ones, 422 + a dead
  letter with the original body for the others; the events on the topic equal the expected events, and their
  replay (figures) equals the replay of the expected events, also after every delivery is retried;
- a wrong or missing signature: 401, nothing produced;
- a client the map does not know: 422 + dead letter;
- Kafka down: 503 with Retry-After, never 2xx; back up: 2xx again.
"""

from __future__ import annotations

import time

import orjson
import pytest
import yaml

from monitor.contracts import load_contracts
from monitor.replay import replay_lines
from tests.ingest.gateway_support import CONTRACTS, GatewayProcess
from tests.ingest.helpers import cases, expected, vendors
from tests.support.pipeline import read_topic

pytestmark = pytest.mark.integration

HTTP = [v for v in vendors() if v != "asterisk"]


def _figures(lines: list[bytes], at_us: int) -> list[tuple]:
    result = replay_lines(lines, load_contracts(CONTRACTS), at_us)
    return sorted((r.client, r.sla, r.period, r.decided, r.good, r.bad, r.value, r.open) for r in result.records)


@pytest.fixture
def gateway(kafka_broker, tmp_path):
    with GatewayProcess(tmp_path / "gw", kafka_broker.bootstrap, HTTP) as gw:
        yield gw.start()


def test_fixtures_through_the_gateway_equal_the_expected_events(gateway, kafka_broker):
    want_events, rejects, bodies = [], 0, []
    for vendor in HTTP:
        want = expected(vendor)
        for path in cases(vendor):
            body = path.read_bytes()
            status, answer, _ = gateway.post(vendor, body)
            if isinstance(want[path.name], dict):
                assert status == 422, (vendor, path.name, status, answer)
                assert want[path.name]["reject"] in orjson.loads(answer)["error"]
                rejects += 1
                bodies.append(body)
            else:
                assert status in (200, 204), (vendor, path.name, status, answer, gateway.tail())
                if status == 200:
                    assert orjson.loads(answer)["accepted"] == len(want[path.name])
                want_events.extend(want[path.name])
    records = read_topic(_settings(gateway, kafka_broker), gateway.events_topic, len(want_events))
    got = [orjson.loads(r.value) for r in records]
    assert all(r.key.decode() == e["client"] for r, e in zip(records, got, strict=True))
    assert sorted(got, key=_order) == sorted(want_events, key=_order)
    letters = read_topic(_settings(gateway, kafka_broker), gateway.deadletter_topic, rejects)
    assert sorted(r.value for r in letters) == sorted(bodies)
    assert {dict(r.headers)["reason"] for r in letters} == {b"unmappable"}

    # figures: the topic replays to what the expected events replay to
    at = max(_us(e["ts"]) for e in want_events)
    expected_lines = [orjson.dumps(e) for e in want_events]
    figures = _figures(expected_lines, at)
    assert figures == _figures([r.value for r in records], at)
    assert any(f[3] for f in figures), "something was decided"

    # every vendor retries every delivery: the duplicates count once
    for vendor in HTTP:
        for path in cases(vendor):
            if not isinstance(expected(vendor)[path.name], dict):
                status, _, _ = gateway.post(vendor, path.read_bytes())
                assert status in (200, 204)
    records = read_topic(_settings(gateway, kafka_broker), gateway.events_topic, 2 * len(want_events))
    replay = replay_lines([r.value for r in records], load_contracts(CONTRACTS), at)
    assert _figures([r.value for r in records], at) == figures
    assert replay.duplicates >= len(want_events)


def test_wrong_signature_is_401_and_produces_nothing(gateway, kafka_broker):
    vendor = "zendesk"
    body = cases(vendor)[0].read_bytes()
    assert gateway.post(vendor, body, sign=False)[0] == 401
    forged = {"X-Zendesk-Webhook-Signature": "AAAA", "X-Zendesk-Webhook-Signature-Timestamp": "2026-03-02T09:00:00Z"}
    assert gateway.post(vendor, body, sign=False, headers=forged)[0] == 401
    assert gateway.post("servicenow", cases("servicenow")[0].read_bytes(), sign=False,
                        headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})[0] == 401
    tampered = body.replace(b'"high"', b'"low"')
    assert gateway.post(vendor, tampered, sign=False, headers=_signed(gateway, vendor, body))[0] == 401
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(f"{gateway.base}/hooks/nope", data=b"{}"), timeout=10)
    assert err.value.code == 404
    assert gateway.post(vendor, b" " * (2 << 20))[0] == 413  # over max_body_bytes: read no further
    # a valid one afterwards: the only record on either topic
    assert gateway.post(vendor, body)[0] == 200
    assert len(read_topic(_settings(gateway, kafka_broker), gateway.events_topic, 1)) == 1
    assert read_topic(_settings(gateway, kafka_broker), gateway.deadletter_topic, 0, timeout=3) == []


def test_aiohttp_server_option(kafka_broker, tmp_path):
    """`http_server: aiohttp` (the native server is the default): the same answers."""
    with GatewayProcess(tmp_path / "gw", kafka_broker.bootstrap, ["zendesk"], http_server="aiohttp") as gw:
        gw.start()
        body = cases("zendesk")[0].read_bytes()
        assert gw.post("zendesk", body, sign=False)[0] == 401
        assert gw.post("zendesk", b" " * (2 << 20))[0] == 413
        assert gw.post("zendesk", body)[0] == 200
        assert len(read_topic(_settings(gw, kafka_broker), gw.events_topic, 1)) == 1
        assert gw.get("/healthz")[0] == 200 and gw.get("/nope")[0] == 404


def test_unknown_client_is_422_and_dead_lettered(gateway, kafka_broker):
    body = orjson.loads(cases("servicenow")[0].read_bytes())
    body["company"] = "Initech"
    raw = orjson.dumps(body)
    status, answer, _ = gateway.post("servicenow", raw)
    assert status == 422 and orjson.loads(answer)["reason"] == "no_client"
    (letter,) = read_topic(_settings(gateway, kafka_broker), gateway.deadletter_topic, 1)
    assert letter.value == raw and dict(letter.headers)["reason"] == b"no_client"
    status, answer, _ = gateway.post("servicenow", b"{not json")
    assert status == 400


@pytest.mark.slow
def test_kafka_outage_answers_503_never_2xx(kafka_broker_factory, tmp_path):
    broker = kafka_broker_factory()
    with GatewayProcess(tmp_path / "gw", broker.bootstrap, ["zendesk"], produce_timeout_seconds=3,
                        max_in_flight=1) as gw:
        gw.start()
        paths = [p for p in cases("zendesk") if not isinstance(expected("zendesk")[p.name], dict)]
        assert gw.post("zendesk", paths[0].read_bytes())[0] == 200
        broker.stop()
        # two deliveries at once with room for one in flight: one waits for Kafka (503), the other is 429
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(gw.post, "zendesk", paths[1].read_bytes())
            time.sleep(0.5)
            second = pool.submit(gw.post, "zendesk", paths[2].read_bytes())
            (s1, a1, h1), (s2, a2, h2) = first.result(), second.result()
        assert (s1, s2) == (503, 429), (a1, a2)
        assert int(h1["Retry-After"]) >= 1 and int(h2["Retry-After"]) >= 1
        broker.start()
        deadline = time.monotonic() + 90
        while True:  # the vendor retries until accepted
            status, answer, _ = gw.post("zendesk", paths[1].read_bytes())
            if status == 200:
                break
            assert status == 503 and time.monotonic() < deadline, (status, answer, gw.tail())
            time.sleep(1)
        settings = _settings(gw, broker)
        records = read_topic(settings, gw.events_topic, 2, exact=False)
        ids = {orjson.loads(r.value)["event_id"] for r in records}
        assert ids == {e["event_id"] for p in paths[:2] for e in expected("zendesk")[p.name]}


# --- helpers ------------------------------------------------------------------------------------------------


def _settings(gateway, broker):
    from streams.config import load_settings

    return load_settings(None, kafka={"bootstrap_servers": broker.bootstrap})


def _signed(gateway, vendor, body):
    from ingest.auth import sign_headers

    return sign_headers(gateway.schemes[vendor], gateway.secrets[vendor], body, f"{gateway.base}/hooks/{vendor}")


def _order(e: dict):
    return (e["event_id"],)


def _us(ts: str) -> int:
    from datetime import datetime

    from monitor.events import to_us

    return to_us(datetime.fromisoformat(ts.replace("Z", "+00:00")))


def _distinct_events(settings, topic: str, count: int, timeout: float = 30) -> list[dict]:
    """The topic's events, a redelivered copy (same event_id) dropped, once `count` distinct ones are there. The
    tail produces at least once: a produce that times out under load is retried from the recorded position, and
    the engine counts the copy once (ingest/tail.py), so only the distinct events are exact."""
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, dict] = {}
        for r in read_topic(settings, topic, count, exact=False, timeout=max(1.0, deadline - time.monotonic())):
            event = orjson.loads(r.value)
            seen.setdefault(event["event_id"], event)
        if len(seen) >= count or time.monotonic() >= deadline:
            assert len(seen) == count, f"{topic}: {len(seen)} distinct events, expected {count}"
            return list(seen.values())
        time.sleep(0.2)


def test_asterisk_queue_log_is_followed_through_restarts_and_rotation(kafka_broker, tmp_path):
    from tests.ingest.helpers import FIXTURES, endpoint

    fixture = (FIXTURES / "asterisk" / "01-queue_log.txt").read_text().splitlines(keepends=True)
    want = expected("asterisk")["01-queue_log.txt"]
    tails = {"asterisk": {**endpoint("asterisk"), "path": "queue_log", "position_file": "asterisk.pos",
                          "from_start": True, "poll_seconds": 0.1}}
    gw = GatewayProcess(tmp_path / "gw", kafka_broker.bootstrap, [], tails=tails)
    log = tmp_path / "gw" / "queue_log"
    log.write_text("".join(fixture[:8]))
    settings = _settings(gw, kafka_broker)
    try:
        gw.start()
        first = [e for e in want if int(e["event_id"].rsplit(":", 1)[1]) <= int(fixture[7].split("|")[0])]
        _distinct_events(settings, gw.events_topic, len(first))
        with open(log, "a") as fh:  # the rest, a garbage line, and half a line still being written
            fh.write("".join(fixture[8:]) + "garbage without fields\n" + "1772446400|1772446399.130|ord")
        assert _distinct_events(settings, gw.events_topic, len(want)) == want
        letters = read_topic(settings, gw.deadletter_topic, 1, exact=False, timeout=30)
        assert {letter.value for letter in letters} == {b"garbage without fields"}
        gw.stop()
        copies_before = len(read_topic(settings, gw.events_topic, len(want), exact=False)) - len(want)
        with open(log, "a") as fh:  # the half line completes while the gateway is down
            fh.write("ers|NONE|ENTERQUEUE||+4930000000|1\n")
        gw.start()
        events = _distinct_events(settings, gw.events_topic, len(want) + 1)
        assert events[-1]["call_id"] == "1772446399.130@orders"
        copies = len(read_topic(settings, gw.events_topic, len(want) + 1, exact=False)) - len(want) - 1
        assert copies - copies_before < len(want)  # the position was kept: the file was not read again from its start
        log.rename(log.with_name("queue_log.1"))  # logrotate: a new file is read from its start
        log.write_text("1772446500|1772446499.140|orders|NONE|ENTERQUEUE||+4930000001|1\n")
        events = _distinct_events(settings, gw.events_topic, len(want) + 2)
        assert events[-1]["call_id"] == "1772446499.140@orders"
    finally:
        gw.stop()


@pytest.mark.slow
def test_a_worker_fed_by_the_gateway_equals_the_replay_of_the_expected_events(kafka_broker, tmp_path):
    """Every HTTP fixture through the gateway, twice (vendor retries), into a real worker (event clock): its
    /metrics equal the replay of the expected spec events."""
    from tests.support.pipeline import Pipeline, merged, series

    p = Pipeline(kafka_broker.bootstrap, tmp_path / "p", contracts_text=CONTRACTS.read_text(), clock="event")
    gw = GatewayProcess(tmp_path / "gw", kafka_broker.bootstrap, HTTP, create=False)
    gw.events_topic, gw.deadletter_topic = p.settings.topics.events, p.settings.topics.deadletter
    config = yaml.safe_load(gw.config.read_text())
    config["topics"] = {"events": gw.events_topic, "deadletter": gw.deadletter_topic}
    gw.config.write_text(yaml.safe_dump(config))
    try:
        w = p.worker("w").start()
        p.wait_assigned([w])
        gw.start()
        want_events = []
        for _ in range(2):
            for vendor in HTTP:
                for path in cases(vendor):
                    status, _, _ = gw.post(vendor, path.read_bytes())
                    if not isinstance(expected(vendor)[path.name], dict):
                        assert status in (200, 204)
                        want_events.extend(expected(vendor)[path.name])
        p.count = len(want_events)
        (m,) = p.wait_caught_up([w])
        m = merged([m])
        at = max(_us(e["ts"]) for e in want_events)
        replay = replay_lines([orjson.dumps(e) for e in want_events], load_contracts(CONTRACTS), at)
        compared = 0
        for rec in replay.records:
            if rec.kind == "uptime":
                assert series(m, "slamon_uptime_availability_ratio", client=rec.client, sla=rec.sla,
                              service="portal") == rec.value
                continue
            labels = {"client": rec.client, "sla": rec.sla}
            assert series(m, "slamon_sla_period_decided", **labels) == rec.decided, rec
            if rec.good is not None:
                assert series(m, "slamon_sla_period_good", **labels) == rec.good, rec
                assert series(m, "slamon_sla_period_bad", **labels) == rec.bad, rec
            compared += 1
        assert compared >= 6 and any(r.decided for r in replay.records)
        assert sum(v for (n, _), v in m.items() if n == "slamon_events_duplicate_total") == replay.duplicates
        assert replay.duplicates >= len(want_events) // 2
    finally:
        gw.stop()
        p.close()


def test_demo_sender_posts_every_fixture_accepted(gateway):
    """examples/ingest/post_fixtures.py (the vendor traffic of the demo) against the gateway: times compressed
    onto the wall clock (tests/integration/test_demo_ingest.py checks them), every signature valid, every
    mappable fixture accepted."""
    import subprocess
    import sys

    from tests.ingest.gateway_support import ROOT

    out = subprocess.run([sys.executable, "examples/ingest/post_fixtures.py", "--config", str(gateway.config),
                          "--delay", "0", "--speed", "3600"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert len(lines) == sum(len(cases(v)) for v in HTTP)
    assert {line.split()[0] for line in lines} <= {"200", "204", "422"}
