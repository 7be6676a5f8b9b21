"""Jira Service Management (Cloud): a system webhook (Settings > System > WebHooks) for `Issue created`,
`Issue updated` and `Comment created`, with a JQL filter on the service project. With a secret, Jira signs the
body: `X-Hub-Signature: sha256=<hex HMAC-SHA256>`.

Body: `timestamp` (ms), `webhookEvent` (`jira:issue_created`, `jira:issue_updated`, `comment_created`),
`issue{id, key, fields{status{name}, priority{name}, created, reporter{accountId}}}`,
`changelog{id, items[{field, fromString, toString}]}`, `comment{id, author{accountId, accountType}, jsdPublic}`.

| Jira | slamon events |
|---|---|
| jira:issue_created | `created` (priority name, none -> `Medium`; key is the ticket id) |
| changelog `status` to a resolved status (Resolved, Done) | `resolved` |
| ... to a closed status (Closed, Canceled, Declined) | `closed` |
| ... from a resolved/closed status to another | `reopened`, then `status` |
| ... otherwise | `status` (slug of the name: `waiting_for_customer`, `waiting_for_support`, `pending`...) |
| changelog `priority` | `priority` |
| a public comment (comment_created, or an issue_updated carrying it) by the reporter or a customer | `customer_reply` |
| ... public, by anyone else | `agent_reply` |
| internal comment (`jsdPublic: false`) | nothing |

Event ids: `changelog.id` (+ item position), `comment.id` (so the comment_created and the issue_updated of one
comment are one event), `issue.id` for the creation: stable across Jira's retries.
"""

from __future__ import annotations

from typing import Any

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, get, slug, text, timestamp

NAME = "jira"
BODY = "json"
AUTH = "hub-signature"
DEFAULT_PRIORITY = "Medium"


class Options(ConnectorOptions):
    resolved_statuses: frozenset[str] = frozenset({"resolved", "done"})
    closed_statuses: frozenset[str] = frozenset({"closed", "canceled", "cancelled", "declined"})


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict):
        return Reject("expected a JSON object (a Jira webhook)")
    hook = payload.get("webhookEvent")
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else None
    ts = timestamp(payload.get("timestamp"))
    if not isinstance(hook, str):
        return Reject("no webhookEvent: not a Jira webhook")
    if hook not in ("jira:issue_created", "jira:issue_updated", "comment_created"):
        return []  # deletions, worklogs, sprints...
    key = text(get(issue, "key")) if issue else None
    if key is None or ts is None:
        return Reject(f"{hook} without issue.key or timestamp")
    opts: Options = ctx.options
    resolved = {slug(s) for s in opts.resolved_statuses}
    closed = {slug(s) for s in opts.closed_statuses}
    out: list[dict] = []
    if hook == "jira:issue_created":
        issue_id = text(issue.get("id")) or key
        created = timestamp(get(issue, "fields.created")) or ts
        out.append(ctx.ticket(key, created, "created", ctx.event_id("created", issue_id),
                              priority=ctx.priority(text(get(issue, "fields.priority.name")), DEFAULT_PRIORITY)))
        status = text(get(issue, "fields.status.name"))
        s = slug(status) if status else None
        if s in resolved:
            out.append(ctx.ticket(key, created, "resolved", ctx.event_id("created", issue_id, "status")))
        elif s in closed:
            out.append(ctx.ticket(key, created, "closed", ctx.event_id("created", issue_id, "status")))
    elif hook == "jira:issue_updated":
        changelog = payload.get("changelog") if isinstance(payload.get("changelog"), dict) else {}
        items = changelog.get("items") if isinstance(changelog.get("items"), list) else []
        change_id = text(changelog.get("id"))
        if items and change_id is None:
            return Reject("jira:issue_updated with a changelog but no changelog.id")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            field = item.get("fieldId") or item.get("field")
            eid = ctx.event_id("change", change_id, i)
            if field == "status":
                to, frm = text(item.get("toString")), text(item.get("fromString"))
                if to is None:
                    return Reject("status change without toString")
                s, f = slug(to), slug(frm) if frm else None
                if s in resolved:
                    out.append(ctx.ticket(key, ts, "resolved", eid))
                elif s in closed:
                    out.append(ctx.ticket(key, ts, "closed", eid))
                else:
                    if f in resolved or f in closed:
                        out.append(ctx.ticket(key, ts, "reopened", eid + ":reopened"))
                    out.append(ctx.ticket(key, ts, "status", eid, status=ctx.status(to)))
            elif field == "priority":
                out.append(ctx.ticket(key, ts, "priority", eid,
                                      priority=ctx.priority(text(item.get("toString")), DEFAULT_PRIORITY)))
    comment = payload.get("comment")
    if isinstance(comment, dict) and hook != "jira:issue_created":
        reply = _reply(comment, issue)
        if isinstance(reply, Reject):
            return reply
        if reply is not None:
            at = timestamp(comment.get("created")) or ts
            out.append(ctx.ticket(key, at, reply, ctx.event_id("comment", text(comment.get("id")))))
    return out


def _reply(comment: dict, issue: dict) -> str | Reject | None:
    if text(comment.get("id")) is None:
        return Reject("comment without an id")
    if comment.get("jsdPublic") is False:
        return None  # an internal comment
    author = text(get(comment, "author.accountId"))
    if get(comment, "author.accountType") == "customer" or (
            author is not None and author == text(get(issue, "fields.reporter.accountId"))):
        return "customer_reply"
    return "agent_reply"
