"""Zendesk: webhooks subscribed to ticket events (`zen:event-type:ticket.*`, Admin Center > Apps and
integrations > Webhooks). Signed: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + body)).

Envelope (developer.zendesk.com, webhooks/event-types/ticket-events): `type`, `id` (unique per event: our
event id, so a retried delivery is a duplicate), `time`, `subject` (`zen:ticket:<id>`), `detail` (a snapshot
of the ticket: id, status, priority, via.channel, group_id, brand_id, tags...), `event` (`current`/`previous`
for a change; `comment{is_public, author{is_staff}}` for a comment).

| Zendesk event | slamon events |
|---|---|
| ticket.created | `created` (priority: detail.priority, none: `normal`; channel: via.channel; queue: group_id) |
| ... created solved / closed / pending / hold | also `resolved` / `closed` / `status` |
| ticket.status_changed to solved | `resolved` |
| ... to closed | `closed` (also a merge: Zendesk closes the merged-away ticket, tag `closed_by_merge`) |
| ... from solved/closed to another status | `reopened`, then `status` |
| ... otherwise | `status` (`new`, `open`, `pending`, `hold`; lower case: payloads vary in case) |
| ticket.custom_status_changed | `status` with the name given in `custom_statuses` (id -> name), else nothing |
| ticket.priority_changed | `priority` (none -> the default priority) |
| ticket.comment_added, public, author is staff | `agent_reply` |
| ticket.comment_added, public, author not staff | `customer_reply` |
| private comment (internal note), any other type | nothing (acknowledged) |
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, get, slug, text, timestamp

NAME = "zendesk"
BODY = "json"
AUTH = "zendesk"
PREFIX = "zen:event-type:ticket."
DEFAULT_PRIORITY = "normal"
DONE = {"solved", "closed"}


class Options(ConnectorOptions):
    queue_field: str | None = "group_id"
    """detail field whose value (mapped through `queues`) becomes the ticket's queue; None: no queue"""
    custom_statuses: dict[str, str] = Field(default_factory=dict)
    """custom ticket status id -> status name for ticket.custom_status_changed (others are ignored)"""


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict):
        return Reject("expected a JSON object (a Zendesk webhook event)")
    etype, eid, ts = payload.get("type"), text(payload.get("id")), timestamp(payload.get("time"))
    if not isinstance(etype, str) or not etype.startswith("zen:event-type:"):
        return Reject("no Zendesk event type (`type` zen:event-type:...): is this a trigger webhook? "
                      "Use the `generic` connector for trigger bodies")
    if not etype.startswith(PREFIX):
        return []  # user, organization... events: nothing to measure
    if eid is None or ts is None:
        return Reject("Zendesk event without a usable `id` or `time`")
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
    ticket_id = text(detail.get("id"))
    subject = payload.get("subject")
    if ticket_id is None and isinstance(subject, str) and subject.startswith("zen:ticket:"):
        ticket_id = text(subject.removeprefix("zen:ticket:"))
    if ticket_id is None:
        return Reject("Zendesk ticket event without a ticket id (detail.id or subject zen:ticket:<id>)")
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    kind = etype.removeprefix(PREFIX)
    opts: Options = ctx.options

    def ev(type_: str, suffix: str = "", **fields) -> dict:
        return ctx.ticket(ticket_id, ts, type_, ctx.event_id(eid + suffix), **fields)

    if kind == "created":
        queue = None
        if opts.queue_field:
            q = text(detail.get(opts.queue_field))
            queue = ctx.queue(q) if q else None
        out = [ev("created", priority=ctx.priority(detail.get("priority"), DEFAULT_PRIORITY),
                  channel=text(get(detail, "via.channel")), queue=queue)]
        status = _status(detail.get("status"))
        if status == "solved":
            out.append(ev("resolved", ":resolved"))
        elif status == "closed":
            out.append(ev("closed", ":closed"))
        elif status not in (None, "new", "open"):
            out.append(ev("status", ":status", status=ctx.status(status)))
        return out
    if kind == "status_changed":
        current, previous = _status(event.get("current")), _status(event.get("previous"))
        if current is None:
            return Reject("ticket.status_changed without event.current")
        if current == "solved":
            return [ev("resolved")]
        if current == "closed":
            return [ev("closed")]
        out = []
        if previous in DONE:
            out.append(ev("reopened", ":reopened"))
        out.append(ev("status", status=ctx.status(current)))
        return out
    if kind == "custom_status_changed":
        name = opts.custom_statuses.get(str(event.get("current")))
        return [ev("status", status=ctx.status(name))] if name else []
    if kind == "priority_changed":
        return [ev("priority", priority=ctx.priority(event.get("current"), DEFAULT_PRIORITY))]
    if kind == "comment_added":
        comment = event.get("comment") if isinstance(event.get("comment"), dict) else {}
        if comment.get("is_public") is not True:
            return []  # an internal note is not a reply
        staff = get(comment, "author.is_staff")
        if not isinstance(staff, bool):
            return Reject("public comment without author.is_staff: cannot tell an agent reply from a customer's")
        return [ev("agent_reply" if staff else "customer_reply")]
    return []


def _status(value: Any) -> str | None:
    s = text(value)
    return slug(s) if s else None
