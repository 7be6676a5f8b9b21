"""Event schemas: the wire format of spec section 1, validated strictly at the edge.

Every event is one JSON object. Decoding never raises: it returns either a typed event or a
`Rejection` whose reason is one of `REJECT_REASONS`, so adapters can dead-letter it and count it.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Literal

import msgspec
import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

MAX_EVENT_BYTES = 16 * 1024
"""An event larger than this is rejected as `oversized` before parsing (real events are < 1 KiB)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TS = EPOCH  # spec section 1: any instant from 1970 on (historical logs replay like live ones)
MAX_TS = datetime(2100, 1, 1, tzinfo=UTC)

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]

# Rejection reasons (a closed set: they become a metric label).
MALFORMED = "malformed"  # not JSON, not an object, or not UTF-8
INVALID = "invalid"  # JSON but not a valid event (wrong type, missing field, naive time...)
UNKNOWN_CLIENT = "unknown_client"
OVERSIZED = "oversized"
LATE = "late"  # older than the client's allowed lateness
ORPHAN = "orphan"  # a ticket/call event whose creating event never arrived within the lateness
FUTURE = "future"  # event time too far ahead of the receiver's clock
EXPIRED = "expired"  # an event for a ticket that is final (resolved or closed for longer than its reopen window)
REJECT_REASONS = (MALFORMED, INVALID, UNKNOWN_CLIENT, OVERSIZED, LATE, ORPHAN, FUTURE, EXPIRED)


def to_us(ts: datetime) -> int:
    """Exact integer microseconds since the epoch (floats would break deadline ties).

    int(timestamp()) is the exact whole second for instants after 1970 (the float error is far below one
    second and a whole-second quotient is exactly representable), and microsecond is exact."""
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


def from_us(us: int) -> datetime:
    return EPOCH + us * _ONE_US


def format_us(us: int) -> str:
    return from_us(us).isoformat().replace("+00:00", "Z")


class _EventBase(BaseModel):
    # Unknown extra fields are ignored so producers can add context without breaking consumers.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: EventId
    client: Name
    ts: Annotated[AwareDatetime, Field(ge=MIN_TS, lt=MAX_TS)]  # checked in pydantic-core, not Python

    @cached_property  # read several times per event on the hot path; the model is frozen
    def ts_us(self) -> int:
        return to_us(self.ts)


TicketType = Literal[
    "created", "agent_reply", "customer_reply", "status", "priority", "resolved", "reopened", "closed"
]


class TicketEvent(_EventBase):
    kind: Literal["ticket"]
    ticket_id: EventId
    type: TicketType
    priority: Name | None = None
    status: Name | None = None
    queue: Name | None = None
    channel: Name | None = None

    @model_validator(mode="after")
    def _required_by_type(self):
        if self.type in ("created", "priority") and self.priority is None:
            raise ValueError(f"a ticket '{self.type}' event needs 'priority'")
        if self.type == "status" and self.status is None:
            raise ValueError("a ticket 'status' event needs 'status'")
        return self


class CallEvent(_EventBase):
    kind: Literal["call"]
    call_id: EventId
    queue: Name
    type: Literal["offered", "answered", "abandoned", "ended"]
    wrapup_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None


class ProbeEvent(_EventBase):
    kind: Literal["probe"]
    service: Name
    status: Literal["up", "down"]
    latency_ms: Annotated[float, Field(ge=0, le=3_600_000)] | None = None


class SurveyEvent(_EventBase):
    kind: Literal["survey"]
    score: Annotated[int, Field(ge=1, le=5)]
    ticket_id: EventId | None = None
    call_id: EventId | None = None


class AuditEvent(_EventBase):
    kind: Literal["audit"]
    items: Annotated[int, Field(gt=0, le=1_000_000_000)]
    errors: Annotated[int, Field(ge=0, le=1_000_000_000)]

    @model_validator(mode="after")
    def _errors_le_items(self):
        if self.errors > self.items:
            raise ValueError(f"errors ({self.errors}) exceed items ({self.items})")
        return self


Event = Annotated[
    TicketEvent | CallEvent | ProbeEvent | SurveyEvent | AuditEvent, Field(discriminator="kind")
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
KINDS = ("ticket", "call", "probe", "survey", "audit")


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    event_id: str | None = None
    client: str | None = None


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in e["loc"] if p not in KINDS) or "event"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def decode_event(raw: bytes | str, clients: Container[str]) -> Event | Rejection:
    """Parse and validate one wire event. Never raises.

    A well-formed event (bytes, no escapes, a plain RFC 3339 `ts`) takes the fast path (`_decode_fast`);
    anything the fast path does not accept goes through pydantic, which decides and words every rejection."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(OVERSIZED, f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    event = _decode_fast(raw) if type(raw) is bytes and b"\\" not in raw else None
    if event is None:
        try:
            event = EVENT_ADAPTER.validate_json(raw)
        except ValidationError as err:
            return _classify_invalid(raw, err)
        except (ValueError, RecursionError) as err:  # undecodable bytes, pathological nesting
            return Rejection(MALFORMED, str(err)[:200])
    if event.client not in clients:
        return Rejection(UNKNOWN_CLIENT, f"client {event.client!r} is not in the contracts",
                         event.event_id, None)
    return event


# --- the fast path: msgspec structs mirroring the models, then the pydantic instance built directly ----------
#
# It accepts only what pydantic accepts, with the same values: the length, range and literal rules checked by
# msgspec's C decoder (strict types, no coercion, extra fields ignored, the last of duplicate keys wins, as in
# pydantic-core), the two model validators by hand, and `ts` only in the plain RFC 3339 shape below, parsed by
# `datetime.fromisoformat` (the same instant and offset; the tzinfo is the stdlib's `timezone`, pydantic-core
# gives its own `TzInfo`: equal, and serialized the same). Whatever it refuses (a bad event, any backslash
# escape, another time shape) pydantic decides: rejections and their messages never come from here.
# tests/property/test_decoder_fast_path.py checks that both paths agree on fuzzed and generated input.

_FId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Unset = msgspec.UnsetType
_UNSET = msgspec.UNSET


class _FTicket(msgspec.Struct, tag="ticket", tag_field="kind"):
    event_id: _FId
    client: _FId
    ts: str
    ticket_id: _FId
    type: TicketType
    priority: _FId | _Unset | None = _UNSET
    status: _FId | _Unset | None = _UNSET
    queue: _FId | _Unset | None = _UNSET
    channel: _FId | _Unset | None = _UNSET


class _FCall(msgspec.Struct, tag="call", tag_field="kind"):
    event_id: _FId
    client: _FId
    ts: str
    call_id: _FId
    queue: _FId
    type: Literal["offered", "answered", "abandoned", "ended"]
    wrapup_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] | _Unset | None = _UNSET


class _FProbe(msgspec.Struct, tag="probe", tag_field="kind"):
    event_id: _FId
    client: _FId
    ts: str
    service: _FId
    status: Literal["up", "down"]
    latency_ms: Annotated[float, msgspec.Meta(ge=0, le=3_600_000)] | _Unset | None = _UNSET


class _FSurvey(msgspec.Struct, tag="survey", tag_field="kind"):
    event_id: _FId
    client: _FId
    ts: str
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    ticket_id: _FId | _Unset | None = _UNSET
    call_id: _FId | _Unset | None = _UNSET


class _FAudit(msgspec.Struct, tag="audit", tag_field="kind"):
    event_id: _FId
    client: _FId
    ts: str
    items: Annotated[int, msgspec.Meta(gt=0, le=1_000_000_000)]
    errors: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


_FAST = msgspec.json.Decoder(_FTicket | _FCall | _FProbe | _FSurvey | _FAudit)
# The only `ts` shape taken fast: date, "T", time, 1-6 fraction digits, "Z" or a +-HH:MM offset under 24 h.
_TS_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
                       re.ASCII).fullmatch
_MAX_US = to_us(MAX_TS)
_fromisoformat = datetime.fromisoformat
_new = object.__new__
_set_dict = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _build(cls: type, values: dict, fields_set: set[str]):
    """The model instance pydantic would validate from these values (its __dict__ in field order)."""
    model = _new(cls)
    _set_dict(model, "__dict__", values)
    _set_fields_set(model, fields_set)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def _decode_fast(raw: bytes):
    """The event, or None: let pydantic decide (never raises)."""
    try:
        if not raw.isascii():
            raw.decode()  # msgspec does not check the UTF-8 of what it skips (unknown keys and their values)
        f = _FAST.decode(raw)
        text = f.ts
        if _TS_SHAPE(text) is None:
            return None
        ts = _fromisoformat(text)
        us = (ts - EPOCH) // _ONE_US  # == to_us(ts), without .timestamp()
    except Exception:
        return None
    if not 0 <= us < _MAX_US:
        return None
    cls = type(f)
    if cls is _FCall:
        wrapup = f.wrapup_seconds
        fields_set = set(_CALL_SET)
        if wrapup is _UNSET:
            wrapup = None
        else:
            fields_set.add("wrapup_seconds")
        return _build(CallEvent, {"event_id": f.event_id, "client": f.client, "ts": ts, "kind": "call",
                                  "call_id": f.call_id, "queue": f.queue, "type": f.type,
                                  "wrapup_seconds": wrapup, "ts_us": us}, fields_set)
    if cls is _FTicket:
        kind, priority, status, queue, channel = f.type, f.priority, f.status, f.queue, f.channel
        fields_set = set(_TICKET_SET)
        if priority is _UNSET:
            priority = None
        else:
            fields_set.add("priority")
        if status is _UNSET:
            status = None
        else:
            fields_set.add("status")
        if queue is _UNSET:
            queue = None
        else:
            fields_set.add("queue")
        if channel is _UNSET:
            channel = None
        else:
            fields_set.add("channel")
        if (priority is None and (kind == "created" or kind == "priority")) or (status is None and kind == "status"):
            return None  # TicketEvent._required_by_type
        return _build(TicketEvent, {"event_id": f.event_id, "client": f.client, "ts": ts, "kind": "ticket",
                                    "ticket_id": f.ticket_id, "type": kind, "priority": priority,
                                    "status": status, "queue": queue, "channel": channel, "ts_us": us}, fields_set)
    if cls is _FProbe:
        latency = f.latency_ms
        fields_set = set(_PROBE_SET)
        if latency is _UNSET:
            latency = None
        else:
            fields_set.add("latency_ms")
        return _build(ProbeEvent, {"event_id": f.event_id, "client": f.client, "ts": ts, "kind": "probe",
                                   "service": f.service, "status": f.status, "latency_ms": latency, "ts_us": us},
                      fields_set)
    if cls is _FSurvey:
        ticket_id, call_id = f.ticket_id, f.call_id
        fields_set = set(_SURVEY_SET)
        if ticket_id is _UNSET:
            ticket_id = None
        else:
            fields_set.add("ticket_id")
        if call_id is _UNSET:
            call_id = None
        else:
            fields_set.add("call_id")
        return _build(SurveyEvent, {"event_id": f.event_id, "client": f.client, "ts": ts, "kind": "survey",
                                    "score": f.score, "ticket_id": ticket_id, "call_id": call_id, "ts_us": us},
                      fields_set)
    if f.errors > f.items:
        return None  # AuditEvent._errors_le_items
    return _build(AuditEvent, {"event_id": f.event_id, "client": f.client, "ts": ts, "kind": "audit",
                               "items": f.items, "errors": f.errors, "ts_us": us}, set(_AUDIT_SET))


def ticket_event_of(event_id: str, client: str, ts_us: int, ticket_id: str, kind: str, priority: str | None,
                    status: str | None, queue: str | None, channel: str | None) -> TicketEvent:
    """A ticket event rebuilt from values an accepted event had (the compiled replay's hand-back,
    monitor/compiled_replay.py): no validation again; `ts` in UTC (the instant, not the producer's offset)."""
    values = {"event_id": event_id, "client": client, "ts": from_us(ts_us), "kind": "ticket", "ticket_id": ticket_id,
              "type": kind, "priority": priority, "status": status, "queue": queue, "channel": channel,
              "ts_us": ts_us}
    return _build(TicketEvent, values, set(_TICKET_SET) | {k for k in _TICKET_OPTIONAL if values[k] is not None})


_BASE_SET = frozenset({"event_id", "client", "ts", "kind"})
_CALL_SET = _BASE_SET | {"call_id", "queue", "type"}
_TICKET_SET = _BASE_SET | {"ticket_id", "type"}
_TICKET_OPTIONAL = ("priority", "status", "queue", "channel")
_PROBE_SET = _BASE_SET | {"service", "status"}
_SURVEY_SET = _BASE_SET | {"score"}
_AUDIT_SET = _BASE_SET | {"items", "errors"}


def _classify_invalid(raw: bytes | str, err: ValidationError) -> Rejection:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Rejection(MALFORMED, _describe(err))
    if not isinstance(obj, dict):
        return Rejection(MALFORMED, f"expected a JSON object, got {type(obj).__name__}")
    event_id, client = obj.get("event_id"), obj.get("client")
    return Rejection(
        INVALID,
        _describe(err),
        event_id[:128] if isinstance(event_id, str) else None,
        client[:128] if isinstance(client, str) else None,
    )


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))
