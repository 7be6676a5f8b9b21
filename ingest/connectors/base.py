"""What every connector shares: the result type, the mapping context and small parsing helpers.

A connector is a module with

    NAME = "zendesk"                      # the `connector:` value in the gateway config
    BODY = "json"                         # how the gateway parses the request body: json | form | lines
    AUTH = "zendesk"                      # the default auth scheme of its endpoints (ingest/auth.py)
    class Options(ConnectorOptions): ...  # its `options:` in the gateway config (validated at load)
    def map_payload(payload, ctx) -> list[dict] | Reject

`map_payload` is pure: no I/O, no clock, no state. It returns the spec events (dicts, section 1 of the spec) the
payload means, possibly none (an event type slamon has no use for: the gateway acknowledges it and produces
nothing), or a `Reject` with the reason (the gateway answers 422 and dead-letters the original body). It must
never raise on any input: the fuzz tests feed it arbitrary JSON.

Event ids are derived from the vendor's own ids (an event/audit/update id, never a clock or a counter), so a
vendor's retried delivery becomes a duplicate `event_id` that the engine counts once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID = 128


@dataclass(frozen=True, slots=True)
class Reject:
    """The payload cannot be mapped; `reason` says why (returned to the sender and put on the dead letter)."""

    reason: str


Mapped = list[dict] | Reject


def slug(text: str) -> str:
    """A status or name as slamon writes it: lower case, runs of other characters as one `_`.
    `Waiting for customer` -> `waiting_for_customer`, `On-Hold` -> `on_hold`."""
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


class ConnectorOptions(BaseModel):
    """Options every connector takes; a connector's own `Options` extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: dict[str, str] = Field(default_factory=dict)
    """vendor status (any spelling; compared as a slug) -> the status name the contract's pause_statuses use"""
    priorities: dict[str, str] = Field(default_factory=dict)
    """vendor priority (as the vendor writes it, compared case-insensitively) -> the contract's priority name"""
    default_priority: str | None = None
    """priority of a ticket created without one (None: the connector's own default)"""
    queues: dict[str, str] = Field(default_factory=dict)
    """vendor queue id/ARN/name -> the contract's queue name (calls; tickets where the vendor has a queue)"""

    @field_validator("statuses")
    @classmethod
    def _slug_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {slug(k): v for k, v in value.items()}

    @field_validator("priorities")
    @classmethod
    def _fold_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.casefold(): v for k, v in value.items()}


@dataclass
class Context:
    """What a mapping needs besides the payload: the resolved client, the endpoint name (prefix of every
    event id) and the endpoint's options."""

    client: str
    source: str
    options: Any = field(default_factory=ConnectorOptions)

    def event_id(self, *parts: object) -> str:
        """`<source>:<part>:<part>...`, hashed when longer than the spec's 128 characters."""
        text = ":".join([self.source, *(str(p) for p in parts)])
        if len(text) <= MAX_ID:
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return f"{text[:MAX_ID - 33]}~{digest}"

    def status(self, vendor_status: str) -> str:
        s = slug(vendor_status)
        return self.options.statuses.get(s, s) or "unknown"

    def priority(self, vendor_priority: Any, default: str) -> str:
        """The contract's name for a vendor priority; a missing one is `default_priority` (or the connector's
        `default`), mapped like any other."""
        if vendor_priority is None or (isinstance(vendor_priority, str) and not vendor_priority.strip()):
            if self.options.default_priority:
                return self.options.default_priority
            vendor_priority = default
        text = str(vendor_priority).strip()
        return self.options.priorities.get(text.casefold(), text)[:MAX_ID]

    def queue(self, vendor_queue: str) -> str:
        return self.options.queues.get(vendor_queue, vendor_queue)[:MAX_ID]

    def ticket(self, ticket_id: str, ts: str, type_: str, eid: str, **fields: Any) -> dict:
        out = {"event_id": eid, "kind": "ticket", "client": self.client, "ts": ts, "ticket_id": ticket_id,
               "type": type_}
        out.update({k: v for k, v in fields.items() if v is not None})
        return out

    def call(self, call_id: str, queue: str, ts: str, type_: str, eid: str, **fields: Any) -> dict:
        out = {"event_id": eid, "kind": "call", "client": self.client, "ts": ts, "call_id": call_id,
               "queue": queue, "type": type_}
        out.update({k: v for k, v in fields.items() if v is not None})
        return out


# --- payload helpers (tolerant: a wrong type is "absent", never an exception) --------------------------------


def get(obj: Any, path: str, default: Any = None) -> Any:
    """`get(p, "detail.via.channel")`: the value at a dotted path, or `default` when any step is missing or
    not a mapping. A step that is a digit string indexes a list."""
    cur = obj
    for step in path.split("."):
        if isinstance(cur, dict):
            if step not in cur:
                return default
            cur = cur[step]
        elif isinstance(cur, list) and step.isdigit() and int(step) < len(cur):
            cur = cur[int(step)]
        else:
            return default
    return cur


def text(value: Any, max_len: int = MAX_ID) -> str | None:
    """A non-empty identifier-like string from a string or an integer (vendors send ids either way)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.strip()
        if value and len(value) <= max_len:
            return value
    return None


_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")  # Jira's 2026-03-02T14:00:00.000+0000


def timestamp(value: Any) -> str | None:
    """An RFC 3339 UTC instant from what vendors send: RFC 3339 / ISO 8601 with Z or an offset (also `+0000`),
    a naive `YYYY-MM-DD HH:MM:SS` (read as UTC: ServiceNow's API values are UTC), or epoch seconds or
    milliseconds (a number, or a digit string; > 10^11 is milliseconds). None when it is none of these or
    outside 2000..2100 (the decoder's range)."""
    if isinstance(value, bool):
        return None
    dt: datetime | None = None
    try:
        if isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value.strip()):
            value = float(value)
        if isinstance(value, (int, float)):
            if value != value or value in (float("inf"), float("-inf")):
                return None
            seconds = value / 1000 if value > 1e11 else value
            dt = datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str) and 10 <= len(value) <= 40:
            s = value.strip()
            if _NAIVE.match(s):
                dt = datetime.fromisoformat(s.replace(" ", "T")).replace(tzinfo=UTC)
            else:
                s = _COMPACT_OFFSET.sub(r"\1:\2", s.replace("z", "Z"))
                dt = datetime.fromisoformat(s)
                if dt.tzinfo is None:
                    return None
    except (ValueError, OverflowError, OSError):
        return None
    if dt is None or not 2000 <= dt.astimezone(UTC).year < 2100:
        return None
    dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds").replace("+00:00", "Z")


def shift(ts: str, seconds: float) -> str | None:
    """`ts` moved by `seconds` (negative: earlier)."""
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return timestamp(dt.timestamp() + seconds)
