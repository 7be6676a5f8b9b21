"""Event schemas: the wire format of spec section 1, validated strictly at the edge.

Every event is one JSON object. Decoding never raises: it returns either a typed event or a
`Rejection` whose reason is one of `REJECT_REASONS`, so adapters can dead-letter it and count it.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Literal

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
    """Parse and validate one wire event. Never raises."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(OVERSIZED, f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
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
