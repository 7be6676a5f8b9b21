"""Event decoding: strict validation at the edge, every rejection has a reason and never raises."""

import orjson
import pytest

from monitor.events import (
    INVALID,
    MALFORMED,
    MAX_EVENT_BYTES,
    OVERSIZED,
    UNKNOWN_CLIENT,
    Rejection,
    TicketEvent,
    decode_event,
    encode_event,
    to_us,
)

CLIENTS = {"acme"}
GOOD = {"event_id": "e1", "kind": "ticket", "client": "acme", "ts": "2026-11-02T09:00:00+01:00",
        "ticket_id": "T1", "type": "created", "priority": "P1"}


def decode(d) -> object:
    return decode_event(d if isinstance(d, bytes) else orjson.dumps(d), CLIENTS)


def test_a_valid_event_decodes_and_round_trips():
    ev = decode(GOOD)
    assert isinstance(ev, TicketEvent) and ev.ts_us == to_us(ev.ts)
    assert decode(encode_event(ev)) == ev


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[]", b"42", b"", b"null"])
def test_malformed_bytes(raw):
    assert decode(raw).reason == MALFORMED


@pytest.mark.parametrize("change, field", [
    ({"ts": "2026-11-02T09:00:00"}, "ts"),  # naive
    ({"ts": "yesterday"}, "ts"),
    ({"ts": "1969-12-31T23:59:59Z"}, "ts"),  # before 1970 (spec section 1)
    ({"ts": "1970-01-01T00:30:00+01:00"}, "ts"),  # 1969 in UTC
    ({"ts": "2100-01-01T00:00:00Z"}, "ts"),  # absurd
    ({"event_id": ""}, "event_id"),
    ({"event_id": "x" * 129}, "event_id"),
    ({"event_id": 7}, "event_id"),  # wrong type, no coercion
    ({"kind": "fax"}, "kind"),
    ({"type": "escalated"}, "type"),
    ({"type": "status"}, "status"),  # status event without status
    ({"priority": None}, "priority"),  # created without priority
])
def test_invalid_events_name_the_field(change, field):
    r = decode({**GOOD, **change})
    assert isinstance(r, Rejection) and r.reason == INVALID
    assert field in r.detail or "status" in r.detail or "priority" in r.detail


@pytest.mark.parametrize("ts", ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "1999-02-15T09:30:00-05:00",
                                "1999-12-31T23:59:59.999999Z", "2099-12-31T23:59:59Z"])
def test_any_instant_from_1970_on_is_accepted(ts):
    """Spec section 1: `ts` is any instant from 1970 on (historical logs replay like live ones)."""
    ev = decode({**GOOD, "ts": ts})
    assert isinstance(ev, TicketEvent) and ev.ts_us >= 0 and decode(encode_event(ev)) == ev


def test_missing_field_is_invalid_and_keeps_the_id_for_the_dead_letter():
    d = dict(GOOD)
    del d["ticket_id"]
    r = decode(d)
    assert r.reason == INVALID and "ticket_id" in r.detail and r.event_id == "e1"


def test_unknown_client_is_rejected():
    assert decode({**GOOD, "client": "initech"}).reason == UNKNOWN_CLIENT


def test_oversized_is_rejected_before_parsing():
    r = decode({**GOOD, "note": "x" * MAX_EVENT_BYTES})
    assert r.reason == OVERSIZED


def test_other_kinds_validate_their_ranges():
    base = {"event_id": "e", "client": "acme", "ts": "2026-11-02T09:00:00Z"}
    assert decode({**base, "kind": "survey", "score": 6}).reason == INVALID
    assert decode({**base, "kind": "survey", "score": 4.5}).reason == INVALID
    assert decode({**base, "kind": "audit", "items": 3, "errors": 4}).reason == INVALID
    assert decode({**base, "kind": "audit", "items": 0, "errors": 0}).reason == INVALID
    assert decode({**base, "kind": "probe", "service": "p", "status": "flaky"}).reason == INVALID
    assert decode({**base, "kind": "call", "call_id": "c", "queue": "q", "type": "ended",
                   "wrapup_seconds": "3"}).reason == INVALID
    assert decode({**base, "kind": "call", "call_id": "c", "queue": "q", "type": "ended",
                   "wrapup_seconds": 3}).wrapup_seconds == 3.0


def test_deep_nesting_does_not_crash():
    assert isinstance(decode(b"[" * 5000 + b"]" * 5000), Rejection)


def test_unknown_extra_fields_are_ignored():
    assert isinstance(decode({**GOOD, "agent": "bob"}), TicketEvent)
