"""ServiceNow incidents: ServiceNow has no native webhook; an *after* business rule on `incident` (insert and
update) posts this JSON with `sn_ws.RESTMessageV2(...).executeAsync()` (the script is in ingest/README.md;
an async rule would have no `previous`). Auth: Basic (a REST message's basic auth profile) or a bearer token
header; ServiceNow does not sign payloads.

    {"sys_id": "…", "number": "INC0010023", "operation": "insert|update", "sys_mod_count": "4",
     "sys_updated_on": "2026-03-02 14:05:11", "opened_at": "2026-03-02 14:00:00",
     "state": "3", "previous_state": "2", "hold_reason": "1", "priority": "2", "previous_priority": "3",
     "company": "Acme Retail", "assignment_group": "Service Desk", "contact_type": "phone",
     "comment_by": "agent|caller|"}

Times are ServiceNow's internal values (UTC, `YYYY-MM-DD HH:MM:SS`). The event id is `sys_id` + `sys_mod_count`
(one per update of the record, the same when a delivery is retried).

| incident change | slamon events |
|---|---|
| insert | `created` (priority 1..5 -> `P1`..`P5`, queue: assignment group, channel: contact type) |
| insert on hold / resolved / closed | also `status` / `resolved` / `closed` |
| state -> 6 Resolved | `resolved` |
| state -> 7 Closed or 8 Canceled | `closed` |
| state 6/7/8 -> lower (the `incident reopen` rule) | `reopened`, then `status` |
| state -> 1 New, 2 In Progress, 3 On Hold | `status`: `new`, `in_progress`, `on_hold` |
| state 3 with a hold reason | `status`: `awaiting_caller`, `awaiting_problem`, `awaiting_vendor`, `awaiting_change` |
| priority changed | `priority` |
| additional comment (customer-visible) by an agent / the caller | `agent_reply` / `customer_reply` |
| work notes only | nothing |
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, text, timestamp

NAME = "servicenow"
BODY = "json"
AUTH = "basic"
RESOLVED, CLOSED, CANCELED = "6", "7", "8"
DONE = {RESOLVED, CLOSED, CANCELED}
STATES = {"1": "new", "2": "in_progress", "3": "on_hold", "6": "resolved", "7": "closed", "8": "canceled"}
# incident.hold_reason choices (base system; NC for customised instances: override with `hold_reasons`)
HOLD_REASONS = {"1": "awaiting_caller", "3": "awaiting_problem", "4": "awaiting_vendor", "5": "awaiting_change"}
PRIORITIES = {"1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P5"}


class Options(ConnectorOptions):
    state_names: dict[str, str] = Field(default_factory=dict)
    """state value -> status name, for customised state models (merged over the base system's)"""
    hold_reasons: dict[str, str] = Field(default_factory=dict)
    """hold_reason value -> status name (merged over the base system's)"""
    queue_field: str | None = "assignment_group"
    channel_field: str | None = "contact_type"


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict):
        return Reject("expected a JSON object (see ingest/README.md for the business rule's payload)")
    sys_id, number = text(payload.get("sys_id")), text(payload.get("number"))
    mod = text(payload.get("sys_mod_count"))
    ts = timestamp(payload.get("sys_updated_on"))
    if sys_id is None or number is None or mod is None or ts is None:
        return Reject("ServiceNow payload needs sys_id, number, sys_mod_count and sys_updated_on")
    opts: Options = ctx.options
    state, previous = _code(payload.get("state")), _code(payload.get("previous_state"))
    prio, previous_prio = _code(payload.get("priority")), _code(payload.get("previous_priority"))
    base = ctx.event_id(sys_id, mod)

    def ev(type_: str, suffix: str = "", at: str = ts, **fields) -> dict:
        return ctx.ticket(number, at, type_, base + suffix, **fields)

    def status_name(code: str) -> str:
        if code == "3":
            reason = _code(payload.get("hold_reason"))
            named = {**HOLD_REASONS, **opts.hold_reasons}.get(reason or "")
            if named:
                return ctx.status(named)
        return ctx.status({**STATES, **opts.state_names}.get(code, f"state_{code}"))

    out: list[dict] = []
    operation = payload.get("operation")
    if operation == "insert":
        opened = timestamp(payload.get("opened_at")) or ts
        queue = text(payload.get(opts.queue_field)) if opts.queue_field else None
        out.append(ev("created", at=opened, priority=_priority(ctx, prio),
                      queue=ctx.queue(queue) if queue else None,
                      channel=text(payload.get(opts.channel_field)) if opts.channel_field else None))
        if state == RESOLVED:
            out.append(ev("resolved", ":state"))
        elif state in (CLOSED, CANCELED):
            out.append(ev("closed", ":state"))
        elif state not in (None, "1", "2"):
            out.append(ev("status", ":state", status=status_name(state)))
        return out + _comment(payload, ev)
    if operation != "update":
        return Reject("ServiceNow payload needs operation `insert` or `update`")
    if state is not None and state != previous:
        if state == RESOLVED:
            out.append(ev("resolved", ":state"))
        elif state in (CLOSED, CANCELED):
            out.append(ev("closed", ":state"))
        else:
            if previous in DONE:
                out.append(ev("reopened", ":reopened"))
            out.append(ev("status", ":state", status=status_name(state)))
    elif state == "3" and payload.get("hold_reason_changed") is True:
        out.append(ev("status", ":state", status=status_name(state)))
    if prio is not None and previous_prio is not None and prio != previous_prio:
        out.append(ev("priority", ":priority", priority=_priority(ctx, prio)))
    return out + _comment(payload, ev)


def _comment(payload: dict, ev) -> list[dict]:
    by = payload.get("comment_by")
    if by == "agent":
        return [ev("agent_reply", ":comment")]
    if by == "caller":
        return [ev("customer_reply", ":comment")]
    return []


def _priority(ctx: Context, code: str | None) -> str:
    if code is None:
        return ctx.priority(None, "P3")
    if code.casefold() in ctx.options.priorities:
        return ctx.priority(code, "P3")
    return PRIORITIES.get(code) or ctx.priority(code, "P3")


def _code(value: Any) -> str | None:
    """A choice value: `"3"`, `3`, or a display value with its number first (`"3 - Moderate"`)."""
    s = text(value)
    if s is None:
        return None
    head = s.split(" ", 1)[0]
    return head if head.isdigit() else s
