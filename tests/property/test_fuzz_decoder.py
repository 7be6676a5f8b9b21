"""Bad-input suite for the event decoder (`monitor.events.decode_event`).

Inputs: valid events of every kind, then broken: a field dropped or given a wrong type, huge strings and
numbers (1e308, NaN, Infinity, 2**70), duplicate keys, unknown clients and kinds, missing and invalid
timestamps, invalid UTF-8 and lone surrogates, deep nesting (10k levels), truncation and byte flips, random
bytes, and 1 MB inputs. Properties: never raises; the result is an event of a known client or a Rejection whose
reason is one of the decoder's (a closed set, a metric label); what the worker writes to Kafka headers and
SLA events encodes as UTF-8; the same bytes always give the same result; no quadratic blowup (1 MB in < 50 ms).
Accepted events are also fed to an Engine, which must not raise either.

Examples per test: SLAMON_FUZZ_EXAMPLES (default 800, about 3,000 inputs in all, well under a minute in CI);
the figure is printed with -s.
"""

from __future__ import annotations

import math
import os
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.events import (
    INVALID,
    KINDS,
    MALFORMED,
    MAX_EVENT_BYTES,
    OVERSIZED,
    REJECT_REASONS,
    UNKNOWN_CLIENT,
    Rejection,
    decode_event,
    encode_event,
)
from monitor.report import build_report

CONTRACTS = parse_contracts("""
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}}
    slas:
      - {name: fr, kind: first_response, target: {P1: 30m, P2: 2h}, objective: 0.9, pause_statuses: [waiting]}
      - {name: res, kind: resolution, target: {P1: 4h}, objective: 0.9, time: calendar, period: day}
      - {name: sl, kind: service_level, target: 0.8, within: 20s, queues: [orders]}
      - {name: asa, kind: asa, target: 30s}
      - {name: csat, kind: csat, target: 0.8}
  globex:
    timezone: UTC
    slas:
      - {name: up, kind: uptime, service: portal, target: 0.99}
      - {name: acc, kind: accuracy, target: 0.98, period: {rolling: 1d}}
      - {name: mean, kind: csat, method: mean, target: 4}
""")
CLIENTS = CONTRACTS.clients
DECODER_REASONS = {MALFORMED, INVALID, UNKNOWN_CLIENT, OVERSIZED}
LIMIT_SECONDS = 0.05
EXAMPLES = int(os.environ.get("SLAMON_FUZZ_EXAMPLES", "0")) or 800
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="SLAMON_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TRIED = {"decoder": 0, "accepted": 0, "engine": 0}

# --- a JSON writer that can say what orjson will not: NaN, Infinity, duplicate keys, any int ----------------


class Pairs(list):
    """A JSON object as (key, value) pairs, so a key may repeat."""


def to_json(value) -> str:
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{to_json(k)}:{to_json(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return to_json(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        # json.dumps-style escapes keep lone surrogates as \\udXXX escapes (invalid JSON text for strict parsers)
        return '"' + "".join(c if " " <= c < "\x7f" and c not in '"\\' else f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # any size: orjson stops at 64 bits
    return orjson.dumps(value).decode()


# --- events -----------------------------------------------------------------------------------------------

TS = st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 2), max_value=__import__("datetime").datetime(
    2099, 12, 30)).map(lambda d: d.isoformat() + "Z")
NAMES = st.sampled_from(["P1", "P2", "P9", "waiting", "open", "orders", "other", "portal", "web", "x" * 128])
IDS = st.text(min_size=1, max_size=12) | st.sampled_from(["e1", "e2", "T-1", "C-1", "x" * 128])


def _event(kind: str) -> st.SearchStrategy[dict]:
    ticket_type = st.sampled_from(["created", "agent_reply", "customer_reply", "status", "priority", "resolved",
                                   "reopened", "closed"])
    call_type = st.sampled_from(["offered", "answered", "abandoned", "ended"])
    required, optional = {
        "ticket": ({"ticket_id": IDS, "type": ticket_type}, {"priority": NAMES, "status": NAMES, "queue": NAMES,
                                                             "channel": NAMES}),
        "call": ({"call_id": IDS, "queue": NAMES, "type": call_type}, {"wrapup_seconds": st.floats(0, 86_400)}),
        "probe": ({"service": NAMES, "status": st.sampled_from(["up", "down"])}, {"latency_ms": st.floats(0, 1e6)}),
        "survey": ({"score": st.integers(1, 5)}, {"ticket_id": IDS, "call_id": IDS}),
        "audit": ({"items": st.integers(1, 1000), "errors": st.just(0)}, {}),
    }[kind]
    common = {"event_id": IDS, "client": st.sampled_from(sorted(CLIENTS)), "ts": TS, "kind": st.just(kind)}
    return st.fixed_dictionaries({**common, **required}, optional=optional)


VALID = st.sampled_from(KINDS).flatmap(_event)
WRONG = (st.none() | st.booleans() | st.integers() | st.sampled_from([2**70, -(2**70), 2**63, 10**400 // 10**300])
         | st.floats() | st.sampled_from([1e308, -1e308, 5e-324, float("nan"), float("inf"), -0.0])
         | st.text(max_size=40) | st.sampled_from(["", "\ud800", "\udfff", "x" * 20_000, "2026-02-30T00:00:00Z",
                                                   "2026-01-01T00:00:00", "2026-01-01", "9999-12-31T23:59:59Z",
                                                   "1970-01-01T00:00:00Z", "nobody", "ticket", "💥"])
         | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def broken_event(draw) -> bytes:
    """A valid event with one to three faults."""
    event = Pairs(draw(VALID).items())
    for _ in range(draw(st.integers(1, 3))):
        fault = draw(st.sampled_from(["drop", "wrong", "duplicate", "client", "kind", "ts", "extra"]))
        keys = [k for k, _ in event]
        key = draw(st.sampled_from(keys)) if keys else "event_id"
        if fault == "drop":
            event = Pairs((k, v) for k, v in event if k != key)
        elif fault == "wrong":
            event = Pairs((k, draw(WRONG) if k == key else v) for k, v in event)
        elif fault == "duplicate":
            event.append((key, draw(WRONG)))
        elif fault == "client":
            event.append(("client", draw(st.sampled_from(["nobody", "ACME", "acme ", "", "x" * 200]) | st.text())))
        elif fault == "kind":
            event.append(("kind", draw(st.sampled_from(["Ticket", "alert", "", None, 1]) | st.text())))
        elif fault == "ts":
            event = Pairs((k, v) for k, v in event if k != "ts")
            if draw(st.booleans()):
                event.append(("ts", draw(WRONG)))
        else:
            event.append((draw(st.text(max_size=10)), draw(WRONG)))
    return to_json(event).encode("utf-8", "surrogatepass")


@st.composite
def damaged_bytes(draw) -> bytes:
    """Valid or broken event bytes, then truncated, flipped, spliced with invalid UTF-8, or nested deeply."""
    raw = bytearray(draw(broken_event() | VALID.map(lambda e: orjson.dumps(e))))
    op = draw(st.sampled_from(["truncate", "flip", "utf8", "nest", "wrap", "pad"]))
    if op == "truncate":
        del raw[draw(st.integers(0, len(raw))):]
    elif op == "flip" and raw:
        raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    elif op == "utf8":
        at = draw(st.integers(0, len(raw)))
        raw[at:at] = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
                                           b"\xe2\x82", b"\x00", b"\xef\xbb\xbf"]))
    elif op == "nest":
        depth = draw(st.sampled_from([64, 512, 1024, 4000, 10_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" + closer * depth
        raw = bytearray(raw.replace(b'"event_id":', b'"event_id":' + inner + b',"x":', 1)) if draw(
            st.booleans()) else bytearray(inner)
    elif op == "wrap":
        raw = bytearray(b"[" + raw + b"]")
    else:
        raw += b" " * draw(st.sampled_from([0, 1, MAX_EVENT_BYTES]))
    return bytes(raw)


ANY_INPUT = broken_event() | damaged_bytes() | st.binary(max_size=200) | VALID.map(lambda e: orjson.dumps(e))


def check_decode(raw: bytes):
    """decode_event's contract for one input; returns the result."""
    TRIED["decoder"] += 1
    started = time.perf_counter()
    result = decode_event(raw, CLIENTS)
    elapsed = time.perf_counter() - started
    if elapsed > LIMIT_SECONDS:  # a shared machine can stall once: measure again before failing
        elapsed = min(_time(raw) for _ in range(3))
    assert elapsed < LIMIT_SECONDS, f"{len(raw)} bytes took {elapsed * 1000:.1f} ms"
    assert decode_event(raw, CLIENTS) == result, "the same bytes gave another result"
    if isinstance(result, Rejection):
        assert result.reason in DECODER_REASONS and result.reason in REJECT_REASONS, result
        assert isinstance(result.detail, str) and result.detail
        result.detail.encode()  # the worker's dead-letter headers
        for value in (result.event_id, result.client):
            assert value is None or (isinstance(value, str) and len(value) <= 128)
            if value is not None:
                value.encode()
    else:
        TRIED["accepted"] += 1
        assert result.client in CLIENTS
        assert decode_event(encode_event(result), CLIENTS) == result  # round trip; SLA events are orjson
    return result


def _time(raw: bytes) -> float:
    started = time.perf_counter()
    decode_event(raw, CLIENTS)
    return time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print(f"\nfuzz: {TRIED['decoder']} decoder inputs tried ({TRIED['accepted']} accepted), "
          f"{TRIED['engine']} event sequences through the engine")


@pytest.mark.slow
@FUZZ
@given(ANY_INPUT)
def test_decode_never_raises_and_rejects_with_a_closed_reason(raw):
    check_decode(raw)


@pytest.mark.slow
@FUZZ
@given(broken_event())
def test_broken_events_are_rejected_as_invalid_or_unknown(raw):
    result = check_decode(raw)
    # JSON that parses (NaN/Infinity aside) is never "malformed": the reason says what to fix
    if isinstance(result, Rejection) and result.reason == MALFORMED:
        assert any(t in raw for t in (b"NaN", b"Infinity", b"\\ud", b"\\ue")), (raw[:300], result)


@pytest.mark.slow
@FUZZ
@given(VALID)
def test_valid_events_of_known_clients_are_accepted(event):
    result = check_decode(orjson.dumps(event))
    needs = {"created": "priority", "priority": "priority", "status": "status"}.get(event.get("type"))
    if event["kind"] == "ticket" and needs and needs not in event:
        assert isinstance(result, Rejection) and result.reason == INVALID, (event, result)
    else:
        assert not isinstance(result, Rejection), (event, result)


@pytest.mark.parametrize("name,raw", [
    ("1 MB string", b'{"event_id":"' + b"x" * 2**20 + b'"}'),
    ("1 MB nesting", b"[" * 2**19 + b"]" * 2**19),
    ("1 MB of digits", b'{"items":' + b"9" * 2**20 + b"}"),
    ("1 MB of keys", b"{" + b",".join(b'"k%d":1' % i for i in range(100_000)) + b"}"),
    ("1 MB invalid UTF-8", b"\xff" * 2**20),
    ("16 KiB nesting", b"[" * (MAX_EVENT_BYTES // 2) + b"]" * (MAX_EVENT_BYTES // 2)),
    ("16 KiB of duplicate keys", b"{" + b",".join([b'"client":"acme"'] * 1000) + b"}"),
    ("16 KiB number", b'{"items":' + b"9" * (MAX_EVENT_BYTES - 12) + b"}"),
    ("16 KiB float", b'{"items":0.' + b"9" * (MAX_EVENT_BYTES - 14) + b"}"),
])
def test_large_inputs_are_decided_quickly(name, raw):
    result = check_decode(raw)
    assert isinstance(result, Rejection)


# --- accepted events through the engine ---------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=max(1, EXAMPLES // 4))  # an engine per example: the slow part
@given(st.lists(VALID, min_size=1, max_size=30), st.integers(0, 3 * 86_400))
def test_engine_takes_any_accepted_event_sequence(events, advance_s):
    """Whatever passes the decoder must not crash the engine (late, orphan and odd-but-valid events)."""
    TRIED["engine"] += 1
    engine = Engine(CONTRACTS, keep_decisions=True)
    last = 0
    for raw in (orjson.dumps(e) for e in events):
        event = check_decode(raw)
        if not isinstance(event, Rejection):
            problem = engine.ingest(event)
            assert problem is None or problem.reason in REJECT_REASONS
            last = max(last, event.ts_us)
    engine.advance_to(last + advance_s * 1_000_000)
    build_report(engine, last + advance_s * 1_000_000)
