"""The decoder's fast path (`monitor.events._decode_fast`, msgspec) accepts only what pydantic accepts, with the
same values, so `decode_event` gives the same events and the same rejections either way.

Inputs: the bad-input suite's (tests/property/test_fuzz_decoder.py: valid events, broken ones, damaged bytes,
random bytes), every `ts` shape that is near the fast one, and generated traffic, which must take the fast path
(else the speedup is silently gone).
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.contracts import load_contracts
from monitor.events import EVENT_ADAPTER, OVERSIZED, Rejection, _decode_fast, decode_event, to_us
from monitor.simulation.generator import GeneratorConfig, generate
from tests.property.test_fuzz_decoder import ANY_INPUT, CLIENTS, FUZZ, VALID

BASE = {"event_id": "e1", "kind": "call", "client": "acme", "call_id": "c", "queue": "orders", "type": "offered"}


def slow(raw: bytes):
    """What pydantic alone makes of the input: the event, or None when it rejects it."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except (ValidationError, ValueError, RecursionError):
        return None


def same_event(fast, slow_event) -> None:
    assert slow_event is not None, "the fast path accepted what pydantic rejects"
    assert type(fast) is type(slow_event)
    assert fast == slow_event
    assert list(fast.__dict__)[:len(slow_event.__dict__)] == list(slow_event.__dict__)  # field order: model_dump
    assert fast.model_dump() == slow_event.model_dump()
    assert fast.model_dump(mode="json") == slow_event.model_dump(mode="json")
    assert fast.model_fields_set == slow_event.model_fields_set
    assert fast.ts.utcoffset() == slow_event.ts.utcoffset()
    assert fast.ts_us == to_us(slow_event.ts) == to_us(fast.ts)


def check(raw: bytes) -> None:
    fast = _decode_fast(raw)
    if fast is not None:
        same_event(fast, slow(raw))
    result = decode_event(raw, CLIENTS)
    if isinstance(result, Rejection) and result.reason != OVERSIZED:  # oversized: refused before either path
        assert fast is None or fast.client not in CLIENTS


@pytest.mark.slow
@FUZZ
@given(ANY_INPUT)
def test_the_fast_path_agrees_with_pydantic_on_any_input(raw):
    check(raw)


@pytest.mark.slow
@FUZZ
@given(VALID)
def test_valid_events_take_the_fast_path(event):
    raw = orjson.dumps(event)
    check(raw)
    needs = {"created": "priority", "priority": "priority", "status": "status"}.get(event.get("type"))
    if b"\\" not in raw and not (event["kind"] == "ticket" and needs and event.get(needs) is None):
        assert _decode_fast(raw) is not None, raw


DIGIT = st.sampled_from("0123456789")
TS_TEXT = st.builds(
    lambda y, mo, d, h, mi, s, frac, sep, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.sampled_from(["1969", "1970", "2026", "2099", "2100", "0000", "9999", "١٩٧٠"]),
    st.sampled_from(["01", "02", "12", "13", "00", "1"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["00", "09", "23", "24", "1"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61"]),
    st.sampled_from(["", ".", ".1", ".123456", ".1234567", ".000000001", ",5"]) | st.text(DIGIT, max_size=8).map(
        lambda x: "." + x),
    st.sampled_from(["T", "t", " ", "_"]),
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+01:00", "+05:30", "-12:45", "+23:59", "+24:00", "+00:60",
                     "+0100", "+01", "-99:00", "+01:5"]),
)


@FUZZ
@given(TS_TEXT)
def test_every_time_shape_agrees_with_pydantic(ts):
    check(orjson.dumps({**BASE, "ts": ts}))


@pytest.mark.parametrize("value", [3, 3.0, 0, -0.0, 86_400, 86_400.0001, 1e-320, 2**53 + 1, True, "3", None])
def test_numbers_agree_with_pydantic(value):
    check(orjson.dumps({**BASE, "type": "ended", "wrapup_seconds": value}))
    check(orjson.dumps({"event_id": "e", "kind": "survey", "client": "acme", "ts": "2026-11-02T09:00:00Z",
                        "score": value}))
    check(orjson.dumps({"event_id": "e", "kind": "audit", "client": "globex", "ts": "2026-11-02T09:00:00Z",
                        "items": value, "errors": 1}))


@pytest.mark.parametrize("raw", [
    b'{"event_id":"e","kind":"call","client":"acme","ts":"2026-11-02T09:00:00Z","call_id":"c","queue":"a",'
    b'"type":"offered","queue":"b"}',  # duplicate key: the last wins on both paths
    b'{"kind":"call","event_id":"e","kind":"ticket","client":"acme","ts":"2026-11-02T09:00:00Z","call_id":"c",'
    b'"queue":"a","type":"offered","ticket_id":"t"}',  # two kinds
    b'{"event_id":"' + "é".encode() * 128 + b'","kind":"call","client":"acme","ts":"2026-11-02T09:00:00Z",'
    b'"call_id":"c","queue":"a","type":"offered"}',  # 128 characters, 256 bytes
    b'{"event_id":"' + "😀".encode() * 129 + b'","kind":"call","client":"acme","ts":"2026-11-02T09:00:00Z",'
    b'"call_id":"c","queue":"a","type":"offered"}',
    b'{"event_id":"e","kind":"ticket","client":"acme","ts":"2026-11-02T09:00:00Z","ticket_id":"t",'
    b'"type":"created","priority":null}',
    b'{"event_id":"e","kind":"audit","client":"globex","ts":"2026-11-02T09:00:00Z","items":3,"errors":4}',
    b' \n{"event_id":"e","kind":"probe","client":"globex","ts":"2026-11-02T09:00:00Z","service":"portal",'
    b'"status":"up","latency_ms":null} \n',
])
def test_edge_cases_agree_with_pydantic(raw):
    check(raw)


def test_generated_traffic_takes_the_fast_path():
    contracts = load_contracts("examples/contracts.yaml")
    cfg = GeneratorConfig(start_us=1_793_574_000_000_000, duration_us=6 * 3_600_000_000, seed=3,
                          tickets_per_hour=100, calls_per_hour=200, disorder_us=60_000_000, duplicate_rate=0.01)
    n = 0
    for event in generate(contracts, cfg):
        raw = orjson.dumps(event)
        fast = _decode_fast(raw)
        assert fast is not None, raw
        same_event(fast, slow(raw))
        n += 1
    assert n > 1000
