"""The compiled event decoder (`monitor._engine.decode_fields`, native/engine/src/decode.rs) against its reference.

It may decline any line (the Python decoder then decides), but whatever it takes must be what
`monitor.events._decode_fast` and so `decode_event` make of the line, with the same field values; and it must take
realistic traffic (else the replay quietly runs the slow path). Inputs: generated events of every kind, damaged
(fields dropped, null, wrong-typed, repeated, out of range; unknown keys with nested values; every near-RFC 3339
time shape; 0/1/128/129-character and multi-byte strings; odd number forms; broken JSON, non-objects, invalid
UTF-8), the bench's traffic, and explicit examples.

Examples per property: SLAMON_ENGINE_DECODER_EXAMPLES (default 300).
"""

from __future__ import annotations

import importlib.util
import math
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import load_contracts
from monitor.events import (
    KINDS,
    AuditEvent,
    CallEvent,
    ProbeEvent,
    Rejection,
    SurveyEvent,
    TicketEvent,
    _decode_fast,
    decode_event,
)

engine = pytest.importorskip("monitor._engine")

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"ticket": TicketEvent, "call": CallEvent, "probe": ProbeEvent, "survey": SurveyEvent, "audit": AuditEvent}
EXAMPLES = int(os.environ.get("SLAMON_ENGINE_DECODER_EXAMPLES", "0")) or 300
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TICKET_TYPES = ["created", "agent_reply", "customer_reply", "status", "priority", "resolved", "reopened", "closed"]
CALL_TYPES = ["offered", "answered", "abandoned", "ended"]
FIELDS = ["event_id", "client", "ts", "kind", "ticket_id", "call_id", "queue", "type", "priority", "status",
          "channel", "service", "wrapup_seconds", "latency_ms", "score", "items", "errors"]


class _AllClients:
    def __contains__(self, client: object) -> bool:
        return True


ALL = _AllClients()


def check(line: bytes) -> dict | None:
    """The compiled decoder's fields of the line; where it takes one, the Python decoders give the same event."""
    got = engine.decode_fields(line)
    if got is None:
        return None
    fast = _decode_fast(line)
    assert fast is not None, f"compiled decoder took what the Python fast path declines: {line!r}"
    event = decode_event(line, ALL)
    assert not isinstance(event, Rejection), (line, event)
    assert type(event) is MODELS[got["kind"]] is type(fast)
    want = event.model_dump()
    assert fast.model_dump() == want
    assert want.pop("ts") == fast.ts
    assert got["ts_us"] == event.ts_us == fast.ts_us
    fields = {k: v for k, v in got.items() if k != "ts_us"}
    assert fields == want, line
    assert {k: type(v) for k, v in fields.items()} == {k: type(v) for k, v in want.items()}, line  # 5.0, not 5
    return got


# --- a JSON writer that can say what orjson will not: repeated keys, any number text, any int ----------------


class Pairs(list):
    """A JSON object as (key, value) pairs, so a key may repeat."""


class Raw(str):
    """JSON text written as it is (a number form such as `5.0`, `1e2`, `-0`)."""


def to_json(value, ws: str = "") -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ws + ("," + ws).join(f"{to_json(k)}{ws}:{ws}{to_json(v, ws)}" for k, v in value) + ws + "}"
    if isinstance(value, dict):
        return to_json(Pairs(value.items()), ws)
    if isinstance(value, list):
        return "[" + ",".join(to_json(v, ws) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # any size: orjson stops at 64 bits
    if isinstance(value, float) and not math.isfinite(value):
        return "1e999" if value > 0 else "-1e999"  # out of range (serde_json refuses it where it reads it)
    return orjson.dumps(value).decode()


# --- values ------------------------------------------------------------------------------------------------

SIMPLE = st.text(alphabet="abcxyzABC0123456789-_.:/ ", min_size=1, max_size=24)
EDGES = st.sampled_from(["", "a", "x" * 127, "x" * 128, "x" * 129, "é" * 128, "é" * 129, "😀" * 128, "😀" * 129,
                         "€" * 128, "😀" * 127 + "x", "a\u0000b", 'quo"te', "back\\slash", "\x7f", "tab\tx"])
ANY_TEXT = st.text(max_size=20)
IDS = SIMPLE | EDGES | ANY_TEXT
NAMES = st.sampled_from(["P1", "P2", "P3", "waiting", "open", "orders", "fraud", "portal", "ivr", "web", "up",
                         "down", *TICKET_TYPES, *CALL_TYPES, *KINDS]) | IDS


def _number_texts(lo: float, hi: float) -> st.SearchStrategy:
    """Numbers in [lo, hi] and around, in every JSON form: shortest, many digits, exponents, midpoints."""
    x = st.floats(lo, hi)
    return st.one_of(
        x,
        st.integers(int(lo), int(hi)),
        st.builds(lambda v, k: Raw(f"{v:.{k}f}"), x, st.integers(0, 25)),
        st.builds(lambda v, k, e: Raw(f"{v:.{k}{e}}"), x, st.integers(0, 20), st.sampled_from("eE")),
        x.map(lambda v: Raw(format((Decimal(v) + Decimal(math.nextafter(v, math.inf))) / 2, "f"))),
        st.sampled_from([Raw(t) for t in ["0", "0.0", "-0", "-0.0", "0e0", "1e2", "1E+2", "5.0", "0.5e1",
                                          "86400", "86400.0", "86400.0000000000000001", "86400.000001",
                                          "3600000", "3600000.0000001", "1e-400", "1e400", "00", "1.", ".5"]]),
    )


WRAPUP = _number_texts(0, 86_400)
LATENCY = _number_texts(0, 3_600_000)
BIG = st.sampled_from([2**53 + 1, 2**63, 2**64, 2**70, -(2**63), 10**30, 1_000_000_000, 1_000_000_001])
INTS = st.integers(-10, 10) | st.integers() | BIG | st.sampled_from([Raw(t) for t in ["5.0", "1e0", "-0", "1E9"]])
NESTED = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=8)
WRONG = st.one_of(st.none(), st.booleans(), INTS, st.floats(), NAMES, NESTED,
                  st.sampled_from([Raw("[]"), Raw("{}"), Raw('{"a":[1,{"b":null}]}'), Raw("1e999"),
                                   Raw("[" * 70 + "]" * 70)]))

# `ts`: every shape near the fast one `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+-HH:MM)`, valid or not
DIGITS = st.text(alphabet="0123456789", max_size=8)
TS_TEXT = st.builds(
    lambda y, mo, d, h, mi, s, frac, sep, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.sampled_from(["1969", "1970", "2000", "2023", "2024", "2026", "2099", "2100", "1900", "0000", "0001",
                     "9999", "١٩٧٠", "20x6", "226"]),
    st.sampled_from(["01", "02", "04", "06", "09", "11", "12", "13", "00", "1", "1a"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00", "1"]),
    st.sampled_from(["00", "09", "23", "24", "1"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61"]),
    st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".000000001", ",5", ".05"]) | DIGITS.map(lambda x: "." + x),
    st.sampled_from(["T", "T", "T", "t", " ", "_"]),
    st.sampled_from(["Z", "Z", "z", "", "+00:00", "-00:00", "+01:00", "+05:30", "-03:00", "-12:45", "+23:59", "+24:00",
                     "+00:60", "+0100", "+01", "-99:00", "+01:5", "Z ", "+05:30Z"]),
)
VALID_TS = st.builds(
    lambda d, frac, zone: d.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone,
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)),
    st.sampled_from([""]) | st.integers(1, 6).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n).map(
        lambda x: "." + x)),
    st.sampled_from(["Z", "+00:00", "-00:00"]) | st.builds(lambda s, h, m: f"{s}{h:02}:{m:02}", st.sampled_from("+-"),
                                                         st.integers(0, 23), st.integers(0, 59)),
)
TS = st.one_of(VALID_TS, TS_TEXT, VALID_TS, VALID_TS)  # most lines should be taken, to compare their values


def _event(kind: str, ids, names, ts) -> st.SearchStrategy[dict]:
    """An event of the kind as a dict (valid where ids, names and ts give valid values)."""
    required, optional = {
        "ticket": ({"ticket_id": ids, "type": st.sampled_from(TICKET_TYPES)},
                   {"priority": names | st.none(), "status": names | st.none(), "queue": names | st.none(),
                    "channel": names | st.none()}),
        "call": ({"call_id": ids, "queue": names, "type": st.sampled_from(CALL_TYPES)},
                 {"wrapup_seconds": WRAPUP | st.none()}),
        "probe": ({"service": names, "status": st.sampled_from(["up", "down"])},
                  {"latency_ms": LATENCY | st.none()}),
        "survey": ({"score": st.integers(1, 5)}, {"ticket_id": ids | st.none(), "call_id": ids | st.none()}),
        "audit": ({"items": st.integers(1, 10**9), "errors": st.integers(0, 10**9)}, {}),
    }[kind]
    common = {"event_id": ids, "kind": st.just(kind), "client": names, "ts": ts}
    return st.fixed_dictionaries({**common, **required}, optional=optional)


def _mutate(draw, pairs: list) -> None:
    op = draw(st.sampled_from(["drop", "wrong", "null", "repeat", "repeat", "unknown", "unknown", "move", "kind"]))
    i = draw(st.integers(0, len(pairs) - 1)) if pairs else 0
    if op == "drop" and pairs:
        del pairs[i]
    elif op == "wrong" and pairs:
        pairs[i] = (pairs[i][0], draw(WRONG))
    elif op == "null" and pairs:
        pairs[i] = (pairs[i][0], None)
    elif op == "repeat":
        key = draw(st.sampled_from(FIELDS))
        value = draw(WRONG | NAMES | TS | st.none())
        pairs.insert(draw(st.integers(0, len(pairs))), (key, value))
    elif op == "unknown":
        key = draw(st.sampled_from(["x", "extra", "Kind", "event_id ", "", "ts_us", "ké"]) | st.text(max_size=8))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(WRONG)))
    elif op == "move" and pairs:
        pairs.insert(draw(st.integers(0, len(pairs) - 1)), pairs.pop(i))
    elif op == "kind":
        pairs.insert(draw(st.integers(0, len(pairs))), ("kind", draw(st.sampled_from([*KINDS, "Ticket", "x", ""])
                                                                     | WRONG)))


def _damage(draw, raw: bytes) -> bytes:
    op = draw(st.sampled_from(["none"] * 14 + ["truncate", "bytes", "byte", "wrap", "pad", "trail", "other"]))
    if op == "truncate":
        return raw[:draw(st.integers(0, max(len(raw) - 1, 0)))]
    if op == "bytes":  # invalid UTF-8 somewhere (in a value, a key, or between tokens)
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80",
                                                b"\x80", b"\xf4\x90\x80\x80"])) + raw[at:]
    if op == "byte":
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    if op == "wrap":
        return b"[" + raw + b"]"
    if op == "pad":
        return draw(st.sampled_from([b" ", b"\n", b"\t\r\n ", b"\x0c", b"\xef\xbb\xbf"])) + raw + draw(
            st.sampled_from([b"", b" ", b"\n", b"\r\n", b"\x0c"]))
    if op == "trail":
        return raw + draw(st.sampled_from([b"{}", b",", b"}", b" x", b"\x00"]))
    if op == "other":
        return draw(st.sampled_from([b"", b"null", b"5", b'"ticket"', b"[]", b"{}", b"{", b'{"kind":"call"}',
                                     b"x" * 17_000, b"{" + b" " * 16_400 + b"}"]))
    return raw


@st.composite
def lines(draw) -> bytes:
    kind = draw(st.sampled_from(KINDS))
    simple = draw(st.booleans())
    ids, names = (SIMPLE, SIMPLE) if simple else (IDS, NAMES)
    pairs = list(draw(_event(kind, ids, names, TS)).items())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        _mutate(draw, pairs)
    ws = draw(st.sampled_from(["", "", " ", "\n", "\t\r\n"]))
    raw = to_json(Pairs(pairs), ws).encode()
    if draw(st.integers(0, 4)) == 0:  # big lines, near and over MAX_EVENT_BYTES
        raw = raw[:-1] + b',"pad":"' + b"p" * draw(st.sampled_from([100, 16_000, 16_384 - len(raw) - 8,
                                                                   16_384 - len(raw) - 9])) + b'"}'
    return _damage(draw, raw)


@PROPERTY
@given(lines())
def test_what_the_compiled_decoder_takes_is_the_python_event(line):
    check(line)


@st.composite
def plain_events(draw) -> bytes:
    """Valid events as producers write them: orjson, simple strings, a plain `ts`, numbers in orjson's form."""
    kind = draw(st.sampled_from(KINDS))
    event = draw(_event(kind, SIMPLE, SIMPLE, VALID_TS))
    for key in ("wrapup_seconds", "latency_ms"):
        if isinstance(event.get(key), Raw):
            event[key] = draw(st.floats(0, 86_400))
    if kind == "audit":
        event["errors"] = min(event["errors"], event["items"])
    return orjson.dumps(event)


@PROPERTY
@given(plain_events())
def test_the_compiled_decoder_takes_every_plain_event_the_python_fast_path_takes(line):
    if _decode_fast(line) is not None:
        assert check(line) is not None, line
    else:  # only a ticket lacking the priority or status its type needs
        assert engine.decode_fields(line) is None
        assert b'"kind":"ticket"' in line and (b'"type":"created"' in line or b'"type":"priority"' in line
                                              or b'"type":"status"' in line), line


def _bench_events():
    spec = importlib.util.spec_from_file_location("bench_events", ROOT / "bench" / "bench_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_events


def test_bench_traffic_takes_the_compiled_decoder():
    contracts = load_contracts(ROOT / "examples" / "contracts.yaml")
    lines = _bench_events()(contracts, 3000)
    kinds = set()
    for line in lines:
        got = check(line)
        assert got is not None, line
        kinds.add(got["kind"])
    assert len(lines) == 3000 and kinds >= {"ticket", "call", "probe"}


def _line(**fields) -> bytes:
    return to_json(Pairs(fields.items())).encode()


TS0 = "2026-11-02T09:00:00Z"
TICKET = {"event_id": "e1", "kind": "ticket", "client": "acme", "ts": TS0, "ticket_id": "T-1", "type": "agent_reply"}
CALL = {"event_id": "e2", "kind": "call", "client": "acme", "ts": TS0, "call_id": "C-1", "queue": "orders",
        "type": "offered"}
PROBE = {"event_id": "e3", "kind": "probe", "client": "globex", "ts": TS0, "service": "portal", "status": "up"}
SURVEY = {"event_id": "e4", "kind": "survey", "client": "acme", "ts": TS0, "score": 4}
AUDIT = {"event_id": "e5", "kind": "audit", "client": "globex", "ts": TS0, "items": 10, "errors": 0}
US_2026 = 1_793_610_000_000_000  # 2026-11-02T09:00:00Z


@pytest.mark.parametrize("fields", [
    TICKET,
    {**TICKET, "type": "created", "priority": "P1", "status": "open", "queue": "billing", "channel": "email"},
    {**TICKET, "type": "status", "status": "waiting", "priority": None, "queue": None, "channel": None},
    CALL,
    {**CALL, "type": "ended", "wrapup_seconds": 30.5},
    {**CALL, "type": "ended", "wrapup_seconds": 12},
    {**CALL, "type": "ended", "wrapup_seconds": None},
    {**CALL, "type": "ended", "wrapup_seconds": 86_400},
    PROBE,
    {**PROBE, "status": "down", "latency_ms": 114.3},
    {**PROBE, "latency_ms": None},
    SURVEY,
    {**SURVEY, "score": 1, "ticket_id": "T-1", "call_id": "C-1"},
    {**SURVEY, "ticket_id": None, "call_id": None},
    AUDIT,
    {**AUDIT, "items": 1_000_000_000, "errors": 1_000_000_000},
    {**CALL, "extra": {"nested": [1, 2.5, {"x": None}], "more": True}, "ts_us": "no"},
], ids=lambda f: f"{f['kind']}-{len(f)}")
def test_each_kind_minimal_and_full(fields):
    got = check(_line(**fields))
    assert got is not None
    assert got["ts_us"] == US_2026
    given = {k: v for k, v in fields.items() if k in MODELS[fields["kind"]].model_fields and k != "ts"}
    assert {k: got[k] for k in given} == given


@pytest.mark.parametrize(("ts", "us"), [
    ("2026-11-02T14:30:00+05:30", US_2026),
    ("2026-11-02T06:00:00-03:00", US_2026),
    ("2026-11-02T09:00:00+00:00", US_2026),
    ("2026-11-02T09:00:00-00:00", US_2026),
    ("2026-11-02T09:00:00.5Z", US_2026 + 500_000),
    ("2026-11-02T09:00:00.05Z", US_2026 + 50_000),
    ("2026-11-02T09:00:00.123456Z", US_2026 + 123_456),
    ("2026-11-02T09:00:00.000001+00:00", US_2026 + 1),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:00:00-01:00", 0),
    ("2099-12-31T23:59:59.999999Z", 4_102_444_800_000_000 - 1),
    ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
    ("2000-02-29T12:00:00Z", 951_825_600_000_000),
])
def test_event_times(ts, us):
    got = check(_line(**{**CALL, "ts": ts}))
    assert got is not None and got["ts_us"] == us


@pytest.mark.parametrize("ts", [
    "2100-01-01T00:00:00Z", "2100-01-01T04:00:00-05:00", "2099-12-31T23:00:00-01:00", "1969-12-31T23:59:59Z",
    "1970-01-01T00:30:00+01:00", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-11-02T09:00:60Z", "2026-11-02T24:00:00Z", "2026-11-02T09:60:00Z", "2026-13-02T09:00:00Z",
    "2026-00-02T09:00:00Z", "2026-11-00T09:00:00Z", "2026-11-02T09:00:00.1234567Z", "2026-11-02T09:00:00.Z",
    "2026-11-02T09:00:00", "2026-11-02T09:00:00+24:00", "2026-11-02T09:00:00+01:60", "2026-11-02T09:00:00+0100",
    "2026-11-02t09:00:00Z", "2026-11-02 09:00:00Z", "2026-11-02T09:00:00z", "2026-11-02T09:00Z", "2026-11-02",
    "٢٠٢٦-11-02T09:00:00Z", "2026-11-02T09:00:00,5Z", "0000-01-01T00:00:00Z", "", "2026-11-02T09:00:00Z ",
])
def test_event_times_declined(ts):
    assert engine.decode_fields(_line(**{**CALL, "ts": ts})) is None


@PROPERTY
@given(TS_TEXT, st.sampled_from([TICKET, CALL, PROBE, SURVEY, AUDIT]))
def test_every_time_shape_agrees(ts, base):
    check(_line(**{**base, "ts": ts}))


@pytest.mark.parametrize(("value", "taken"), [
    ("x" * 128, True), ("x" * 129, False), ("é" * 128, True), ("😀" * 128, True), ("😀" * 129, False),
    ("a", True), ("", False), (None, False), (5, False), (["x"], False),
])
def test_id_lengths_in_characters(value, taken):
    for key, base in [("event_id", CALL), ("client", CALL), ("call_id", CALL), ("queue", CALL), ("service", PROBE),
                      ("ticket_id", TICKET)]:
        got = check(_line(**{**base, key: value}))
        assert (got is not None) == taken, (key, value)
        if taken:
            assert got[key] == value


@pytest.mark.parametrize("line", [
    _line(**{**SURVEY, "score": Raw("5.0")}),
    _line(**{**SURVEY, "score": True}),
    _line(**{**SURVEY, "score": 0}),
    _line(**{**SURVEY, "score": 6}),
    _line(**{**AUDIT, "items": 0}),
    _line(**{**AUDIT, "items": 3, "errors": 4}),
    _line(**{**AUDIT, "items": 1_000_000_001}),
    _line(**{**AUDIT, "errors": True}),
    _line(**{**CALL, "wrapup_seconds": True}),
    _line(**{**CALL, "wrapup_seconds": 86_400.001}),
    _line(**{**CALL, "wrapup_seconds": -1}),
    _line(**{**CALL, "wrapup_seconds": "3"}),
    _line(**{**PROBE, "latency_ms": 3_600_001}),
    _line(**{**PROBE, "status": "UP"}),
    _line(**{**PROBE, "status": None}),
    _line(**{**TICKET, "type": "created"}),
    _line(**{**TICKET, "type": "priority", "priority": None}),
    _line(**{**TICKET, "type": "status"}),
    _line(**{**TICKET, "type": "opened"}),
    _line(**{**CALL, "type": "created"}),
    _line(**{**CALL, "queue": None}),
    _line(**{**CALL, "kind": "Call"}),
    _line(**{k: v for k, v in CALL.items() if k != "kind"}),
    _line(**{k: v for k, v in CALL.items() if k != "ts"}),
    _line(**{**CALL, "ts": 1_793_610_000}),
    to_json(Pairs([*CALL.items(), ("queue", 5), ("queue", "b")])).encode(),  # msgspec checks every occurrence
    to_json(Pairs([*CALL.items(), ("queue", None), ("queue", "b")])).encode(),
    to_json(Pairs([*CALL.items(), ("kind", "ticket"), ("ticket_id", "t")])).encode(),  # two kinds
    to_json(Pairs([*CALL.items(), ("kind", 5)])).encode(),
    _line(**CALL).replace(b'"orders"', b'"ord\\u0065rs"'),  # any backslash: Python decides
    _line(**CALL).replace(b'"orders"', b'"ord\xffrs"'),
    _line(**CALL)[:-1] + b',"x":"\xed\xb2\x80"}',  # a lone surrogate, UTF-8 encoded
    _line(**{**CALL, "wrapup_seconds": Raw("1e999")}),
    _line(**CALL)[:-1] + b',"x":' + b"[" * 70 + b"]" * 70 + b"}",
    _line(**CALL) + b" x",
    b"[" + _line(**CALL) + b"]",
    _line(**{**CALL, "pad": "p" * 16_500}),
])
def test_declined(line):
    assert engine.decode_fields(line) is None


@pytest.mark.parametrize("line", [
    to_json(Pairs([*CALL.items(), ("queue", "a"), ("queue", "b")])).encode(),  # the last of a repeated key wins
    to_json(Pairs([("kind", "call"), *CALL.items()])).encode(),  # the same kind twice
    to_json(Pairs([*TICKET.items(), ("priority", "P1"), ("priority", None)])).encode(),
    to_json(Pairs([*CALL.items(), ("score", "x"), ("service", True), ("status", 5)])).encode(),  # other kinds' keys
    b" \n\t" + _line(**{**CALL, "wrapup_seconds": 1}) + b"\r\n ",
    to_json(Pairs(CALL.items()), " \n").encode(),
    _line(**{**CALL, "wrapup_seconds": Raw("1e2")}),
    _line(**{**CALL, "wrapup_seconds": Raw("0.1")}),
    _line(**{**CALL, "wrapup_seconds": Raw("0.30000000000000001665")}),
    _line(**{**CALL, "wrapup_seconds": Raw("86400.0000000000000001")}),
    _line(**{**CALL, "wrapup_seconds": Raw("4.35000000000000142108547152020037174224853515625")}),
    _line(**{**PROBE, "latency_ms": Raw("3599999.99999999999999999")}),
    _line(**{**PROBE, "latency_ms": Raw("1.7976931348623157e-300")}),
    _line(**{**CALL, "x": "a\x7fb"}),
    _line(**CALL)[:-1] + b',"x":1e999}',  # msgspec skips an unknown key's number without reading it
    _line(**{**CALL, "x": [[[[1]]]], "y": {"a": {"b": {}}}}),
    _line(**{**CALL, "pad": "p" * (16_384 - len(_line(**CALL)) - 9)}),  # 16384 bytes exactly
])
def test_taken(line):
    got = check(line)
    assert got is not None, line
    if line.startswith(b'{"event_id":"e1","kind":"ticket"'):
        assert got["priority"] is None and got["type"] == "agent_reply"
    if b'"queue":"a","queue":"b"' in line:
        assert got["queue"] == "b"
