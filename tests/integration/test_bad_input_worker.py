"""Bad input against one real worker (real Kafka broker, `python -m streams.app`).

About 2,000 seeded-random bad payloads (malformed JSON, invalid UTF-8, lone surrogates, wrong types, huge
strings and numbers, NaN, deep nesting, duplicate keys, unknown clients and kinds, missing and invalid
timestamps) are interleaved with the generated traffic of tests/support/pipeline.py, together with valid but
odd events of known clients (unknown priorities, queues, services; orphan ticket and call events). Then a
second round of bad payloads alone. Checked:

- the worker stays up and answers /healthz;
- every bad message is in the dead-letter topic once, with its original bytes and a reason header that is the
  decoder's reason for those bytes, and `slamon_events_rejected_total{reason}` equals the dead letters per
  reason;
- the SLA figures equal `slamon replay` of the good events alone;
- every label value of every slamon_* series comes from the contracts or a closed set, and no string of the
  bad or odd input appears in /metrics;
- the worker's RSS (/proc/PID/status VmRSS) grows by less than 64 MiB over the bad-only round (printed).
"""

from __future__ import annotations

import random
import time
from collections import Counter

import orjson
import pytest

from monitor.contracts import CallSla, TicketSla, UptimeSla
from monitor.events import KINDS, LATE, REJECT_REASONS, Rejection, decode_event, format_us
from monitor.replay import replay_lines
from streams.metrics import ROLLING, SOON, period_label
from tests.integration.test_pipeline import pipeline_factory  # noqa: F401 - the fixture
from tests.support.pipeline import PARTITIONS, assert_equals_replay, build_stream, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BAD_PER_ROUND = 1000
MARK = "fz"  # every invented name starts with it, so /metrics can be searched for leaks
RSS_GROWTH_LIMIT_KB = 64 * 1024


# --- bad payloads ---------------------------------------------------------------------------------------------


def _base(rng: random.Random, ts: str) -> dict:
    return {"event_id": f"{MARK}-{rng.getrandbits(40):x}", "kind": "audit", "client": "acme", "ts": ts,
            "items": 5, "errors": 1}


def _dup_keys(event: dict, key: str, value) -> bytes:
    text = orjson.dumps(event).decode()
    return (text[:-1] + f',"{key}":' + _json(value) + "}").encode("utf-8", "surrogatepass")


def _json(value) -> str:
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return '"' + "".join(f"\\u{ord(c):04x}" for c in value) + '"'
    return orjson.dumps(value).decode()


WRONG = [None, True, 0, -1, 2**70, -(2**70), 1e308, float("nan"), float("inf"), "", "x" * 300, [], {}, [1, [2]],
         "2026-02-30T00:00:00Z", "2026-03-02T14:00:00", "yesterday", "\ud800", "💥"]


def bad_payload(rng: random.Random, ts: str) -> bytes:
    """One payload the decoder must reject; which fault is drawn at random."""
    event = _base(rng, ts)
    fault = rng.choice(["bytes", "truncate", "utf8", "surrogate", "wrong", "missing", "huge", "nan", "nest",
                        "nest_big", "client", "kind", "dup", "ts", "array", "oversized"])
    if fault == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) + b"\xff"
    if fault == "truncate":
        raw = orjson.dumps(event)
        return raw[: rng.randint(0, len(raw) - 1)]
    if fault == "utf8":
        raw = orjson.dumps(event)
        at = raw.index(b"acme") + 1
        return raw[:at] + rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\x80"]) + raw[at:]
    if fault == "surrogate":
        return _dup_keys(event, rng.choice(["client", "event_id"]), rng.choice(["\ud800", "\udfff", "a\udc00"]))
    if fault == "wrong":
        key = rng.choice(["event_id", "client", "ts", "items", "errors", "kind"])
        return _dup_keys(event, key, rng.choice([w for w in WRONG if not isinstance(w, str) or key != "event_id"]))
    if fault == "missing":
        del event[rng.choice(["event_id", "client", "ts", "items", "kind"])]
        return orjson.dumps(event)
    if fault == "huge":
        return _dup_keys(event, rng.choice(["items", "errors"]), rng.choice([2**70, 10**400, -(2**70), 1e308]))
    if fault == "nan":
        return _dup_keys(event, rng.choice(["items", "ts"]), rng.choice([float("nan"), float("inf")]))
    if fault == "nest":
        depth = rng.choice([100, 1000, 5000])
        return b'{"event_id":' + b"[" * depth + b"]" * depth + b"}"
    if fault == "nest_big":
        return b"[" * 100_000 + b"]" * 100_000
    if fault == "client":
        event["client"] = f"{MARK}-client-{rng.getrandbits(32):x}"
        return orjson.dumps(event)
    if fault == "kind":
        event["kind"] = f"{MARK}-kind-{rng.getrandbits(16):x}"
        return orjson.dumps(event)
    if fault == "dup":
        return _dup_keys(event, "client", f"{MARK}-dup-{rng.getrandbits(16):x}")
    if fault == "ts":
        event["ts"] = rng.choice(["2026-03-02T14:00:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "",
                                  "2026-02-30T00:00:00Z", 1772460000, None])
        return orjson.dumps(event)
    if fault == "array":
        return orjson.dumps([event])
    return orjson.dumps({**event, "note": "x" * rng.choice([17_000, 200_000])})


def rejected_payload(rng: random.Random, ts: str, clients) -> bytes:
    """A bad payload the decoder really rejects (a drawn "wrong" value can happen to be valid) and that
    `streams.producer.produce` sends as is (it skips blank lines and strips line ends)."""
    while True:
        payload = bad_payload(rng, ts)
        sent_as_is = payload.strip() and payload == payload.rstrip(b"\r\n")
        if sent_as_is and isinstance(decode_event(payload, clients), Rejection):
            return payload


def odd_valid_event(rng: random.Random, client: str, ts: str) -> bytes:
    """A valid event of a known client with names the contracts do not have (they must not become labels)."""
    name = f"{MARK}-{rng.getrandbits(24):x}"
    common = {"event_id": f"{MARK}-ok-{rng.getrandbits(48):x}", "client": client, "ts": ts}
    return orjson.dumps(rng.choice([
        {**common, "kind": "ticket", "ticket_id": name, "type": "created", "priority": name, "queue": name,
         "channel": name},
        {**common, "kind": "ticket", "ticket_id": name, "type": rng.choice(["agent_reply", "resolved"])},
        {**common, "kind": "ticket", "ticket_id": name, "type": "status", "status": name},
        {**common, "kind": "call", "call_id": name, "queue": name, "type": rng.choice(["offered", "answered"])},
        {**common, "kind": "probe", "service": name, "status": rng.choice(["up", "down"])},
        {**common, "kind": "survey", "score": rng.randint(1, 5), "ticket_id": name},
    ]))


def stream_with_bad_input(contracts, rng: random.Random) -> tuple[list[bytes], list[bytes], list[bytes], int,
                                                                 dict[str, int]]:
    """(all lines in order, good lines, bad payloads, end instant, reasons of build_stream's own junk)."""
    base, end, junk_rejects = build_stream(contracts)
    body, closing = base[: -len(contracts.clients)], base[-len(contracts.clients):]
    lines, good, bad = [], [], []
    every = max(1, len(body) // BAD_PER_ROUND)
    for i, line in enumerate(body):
        lines.append(line)
        good.append(line)
        if i % every == 0:  # at the event time of the line before: no lateness changes
            try:
                obj = orjson.loads(line)
                ts, client = obj["ts"], obj["client"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            payload = rejected_payload(rng, ts, contracts.clients)
            lines.append(payload)
            bad.append(payload)
            if client in contracts.clients and rng.random() < 0.3:
                odd = odd_valid_event(rng, client, ts)
                lines.append(odd)
                good.append(odd)
    lines += closing
    good += closing
    return lines, good, bad, end, junk_rejects


# --- checks ---------------------------------------------------------------------------------------------------


def allowed_labels(contracts) -> dict[str, set[str]]:
    """Every value each label may take: from the contracts or a closed set."""
    slas = [s for c in contracts.clients.values() for s in c.slas]
    return {
        "client": set(contracts.clients),
        "sla": {s.name for s in slas},
        "priority": {p for s in slas if isinstance(s, TicketSla) for p in s.target},
        "queue": {q for s in slas if isinstance(s, CallSla) for q in s.queues} | {"other"},
        "service": {s.service for s in slas if isinstance(s, UptimeSla)},
        "reason": set(REJECT_REASONS),
        "kind": set(KINDS) | {s.kind for s in slas},
        "partition": {str(p) for p in range(PARTITIONS)},
        "window": {"1h", "6h", "24h"} | set(ROLLING),
        "within": set(SOON),
        "quantile": {"0.5", "0.9", "0.99"},
        "stage": {str(st) for s in slas for st in s.stages},
        "period": {period_label(s.period) for s in slas},
        "currency": {s.penalty.currency for s in slas if s.penalty is not None} | {""},
    }


def assert_labels_within_contracts(m: dict, contracts) -> None:
    allowed = allowed_labels(contracts)
    for name, labels in m:
        if not name.startswith("slamon_"):
            continue
        for label, value in labels:
            assert label in allowed, f"{name}: label {label!r} has no closed set of values"
            assert value in allowed[label], f"{name}{{{label}={value!r}}} is not from the contracts"


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - tiny procfs read
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def reason_of(value: bytes, clients) -> str:
    result = decode_event(value, clients)
    return result.reason if isinstance(result, Rejection) else LATE


# --- the test -------------------------------------------------------------------------------------------------


def test_worker_survives_bad_input_dead_letters_all_and_labels_stay_closed(pipeline_factory):  # noqa: F811
    p = pipeline_factory()
    rng = random.Random(20261123)
    lines, good, bad, end, junk_rejects = stream_with_bad_input(p.contracts, rng)
    assert len(bad) >= BAD_PER_ROUND * 0.9
    assert all(isinstance(decode_event(b, p.contracts.clients), Rejection) for b in bad)
    w = p.worker("fuzzed").start()
    p.wait_assigned([w])

    p.produce(lines)
    (m,) = p.wait_caught_up([w], timeout=180)
    assert w.alive() and w.health() is not None
    rss_before = rss_kb(w.proc.pid)

    # round 2: bad payloads alone (their event times are those of the stream: no lateness, nothing applied)
    bad2 = [rejected_payload(rng, format_us(end), p.contracts.clients) for _ in range(BAD_PER_ROUND)]
    p.produce(bad2)
    (m,) = p.wait_caught_up([w], timeout=180)
    time.sleep(2)  # a checkpoint confirms the dead letters and prunes the outbox
    rss_after = rss_kb(w.proc.pid)
    health = w.health()
    assert w.alive() and health is not None, w.tail()
    print(f"\nworker RSS {rss_before / 1024:.1f} MiB after {len(lines)} messages ({len(bad)} bad), "
          f"{rss_after / 1024:.1f} MiB after {len(bad2)} more bad ones "
          f"({sum(map(len, bad2)) / 2**20:.1f} MiB of payload): +{(rss_after - rss_before) / 1024:.1f} MiB")
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KB

    # dead letters: every rejected message once, original bytes, the decoder's reason
    rejected_lines = [v for v in lines if isinstance(decode_event(v, p.contracts.clients), Rejection)] + bad2
    replay = replay_lines(lines, p.contracts, end)
    expected_count = len(rejected_lines) + replay.rejected.get(LATE, 0)
    letters = read_topic(p.settings, p.settings.topics.deadletter, expected_count, timeout=60, exact=False)
    rejected_metric: Counter = Counter()
    for (name, labels), value in m.items():
        if name == "slamon_events_rejected_total":
            rejected_metric[dict(labels)["reason"]] += int(value)
    missing = Counter(rejected_lines) - Counter(r.value for r in letters)
    assert len(letters) == expected_count, (len(letters), expected_count, +rejected_metric, replay.rejected,
                                            [(v[:120], reason_of(v, p.contracts.clients)) for v in missing])
    by_reason: Counter = Counter()
    for record in letters:
        headers = dict(record.headers)
        reason = headers["reason"].decode()
        assert reason == reason_of(record.value, p.contracts.clients), (reason, record.value[:200])
        assert headers["detail"]
        by_reason[reason] += 1
    values = Counter(r.value for r in letters if dict(r.headers)["reason"] != b"late")
    assert values == Counter(rejected_lines), "dead letters are not exactly the rejected messages"
    assert +rejected_metric == +by_reason, (rejected_metric, by_reason)
    print(f"dead letters by reason: {dict(by_reason)}")

    # figures: equal to the replay of all lines, and the bad lines change nothing in the replay
    everything = lines + bad2
    full = replay_lines(everything, p.contracts, end)
    expected_rejects = {r: v for r, v in full.rejected.items() if r != "orphan" and v}
    assert expected_rejects == dict(by_reason)
    assert_equals_replay(m, everything, p.contracts, end, expected_rejects)
    assert replay_lines(good, p.contracts, end).records == replay.records
    assert set(junk_rejects) <= set(by_reason)

    # labels never grow from bad or odd input
    assert_labels_within_contracts(m, p.contracts)
    body = w.get("/metrics").decode()
    assert MARK + "-" not in body
