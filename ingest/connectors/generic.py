"""Any JSON webhook, mapped by rules declared in the endpoint's options (YAML):

    connector: generic
    client: acme-retail
    auth: {scheme: bearer, secret_file: secrets/helpdesk}
    options:
      kind: ticket                       # ticket | call | probe | survey | audit
      items: data.events                 # optional: a list in the body, one event per element (default: the body)
      fields:                            # spec field -> a dotted path in the item (or in the body: `$.path`)
        event_id: id                     # required: the vendor's own id of this change
        ticket_id: ticket.number
        ts: occurred_at
        type: {path: action, map: {opened: created, answered: agent_reply, solved: resolved, reopened: reopened,
                                   status_changed: status, priority_changed: priority}}
        status: ticket.state
        priority: {path: ticket.urgency, map: {"1": P1, "2": P2}, default: P3}
        queue: {const: general}

A field rule is a path, or `{path, map, default, const}`: `const` is a fixed value; `map` renames values (an
unmapped value passes through unless `strict: true`, then the item is rejected); `default` fills a missing value.
`skip_types` lists `type` values (after mapping) to acknowledge without an event. Times go through the same
tolerant parser as every connector (RFC 3339, epoch s/ms, naive = UTC). The event id is `<endpoint>:<event_id>`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, get, text, timestamp

NAME = "generic"
BODY = "json"
AUTH = "bearer"
NUMERIC = {"wrapup_seconds", "latency_ms", "score", "items", "errors"}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    const: Any = None
    map: dict[str, Any] = Field(default_factory=dict)
    default: Any = None
    strict: bool = False


class Options(ConnectorOptions):
    kind: Literal["ticket", "call", "probe", "survey", "audit"]
    items: str | None = None
    fields: dict[str, str | Rule]
    skip_types: frozenset[str] = frozenset()


def _value(rule: str | Rule, item: Any, body: Any) -> tuple[Any, str | None]:
    if isinstance(rule, str):
        rule = Rule(path=rule)
    if rule.const is not None:
        return rule.const, None
    value = None
    if rule.path:
        value = get(body, rule.path[2:]) if rule.path.startswith("$.") else get(item, rule.path)
    if value is None or value == "":
        return rule.default, None
    if rule.map:
        key = str(value).lower() if isinstance(value, bool) else str(value)
        if key in rule.map:
            return rule.map[key], None
        if rule.strict:
            return None, f"value {key[:40]!r} of {rule.path} has no mapping"
    return value, None


def map_payload(payload: Any, ctx: Context) -> Mapped:
    opts: Options = ctx.options
    items = get(payload, opts.items) if opts.items else payload
    if opts.items and not isinstance(items, list):
        return Reject(f"{opts.items} is not a list")
    out = []
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            return Reject("an item is not a JSON object")
        event: dict[str, Any] = {"kind": opts.kind, "client": ctx.client}
        for name, rule in opts.fields.items():
            value, problem = _value(rule, item, payload)
            if problem:
                return Reject(problem)
            if value is None:
                continue
            if name == "ts":
                value = timestamp(value)
                if value is None:
                    return Reject("ts is missing or not a time")
            elif name in NUMERIC:
                if isinstance(value, str):
                    try:
                        value = float(value) if name in ("wrapup_seconds", "latency_ms") else int(value)
                    except ValueError:
                        return Reject(f"{name} is not a number")
            elif isinstance(value, (int, str)) and not isinstance(value, bool):
                value = text(value, 1000)
                if value is None:
                    continue
            event[name] = value
        vendor_id = text(event.get("event_id"), 1000)
        if vendor_id is None:
            return Reject("no event_id in the item (fields.event_id)")
        if event.get("type") in opts.skip_types:
            continue
        if opts.kind == "ticket":  # a status/priority field only belongs to the event that changes it
            if event.get("type") == "status" and isinstance(event.get("status"), str):
                event["status"] = ctx.status(event["status"])
            else:
                event.pop("status", None)
            if event.get("type") not in ("created", "priority"):
                event.pop("priority", None)
        event["event_id"] = ctx.event_id(vendor_id)
        out.append(event)
    return out
