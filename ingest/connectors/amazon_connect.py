"""Amazon Connect contact events, delivered by an EventBridge rule (`source: aws.connect`, `detail-type:
Amazon Connect Contact Event`) to an API destination pointing at the gateway. The connection's auth: API key
(a header name and value: scheme `header`), or Basic. The body is the EventBridge event:
`{"version": "0", "id", "detail-type", "source", "time", "detail": {eventType, contactId, channel,
initiationMethod, initiationTimestamp, disconnectTimestamp, queueInfo{queueArn, enqueueTimestamp},
agentInfo{agentArn, connectedToAgentTimestamp, afterContactWorkDuration}, ...}}`. Delivery is best effort and
unordered (AWS docs); EventBridge retries an API destination for up to 24 h.

| contact event | slamon events (call_id = contactId; queue = the queue ARN's id, renamed by `queues`) |
|---|---|
| QUEUED | `offered` at queueInfo.enqueueTimestamp |
| CONNECTED_TO_AGENT | `answered` at agentInfo.connectedToAgentTimestamp |
| DISCONNECTED, queued, never connected to an agent | `abandoned` at disconnectTimestamp |
| DISCONNECTED, never queued (hung up in the IVR/flow) | nothing: never offered |
| COMPLETED (after the after-contact work), answered | `ended` at disconnectTimestamp + `wrapup_seconds` (ACW) |
| INITIATED, CONNECTED_TO_SYSTEM, CONTACT_DATA_UPDATED... | nothing |

Transfers: a transfer creates a new contact (initiationMethod TRANSFER) queued again: a call of its own in the
queue it is transferred to (`transfers: ignore` drops them). Callbacks (initiationMethod CALLBACK, the customer is
not on the line): not counted unless `callbacks: count`. Channels other than VOICE: not counted unless listed in
`channels`. Event ids: `contactId` + event type (EventBridge's envelope `id` would do as well; the contact's own
ids stay meaningful in the topic).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, get, text, timestamp

NAME = "amazon_connect"
BODY = "json"
AUTH = "header"


class Options(ConnectorOptions):
    channels: frozenset[str] = Field(frozenset({"VOICE"}), description="contact channels counted as calls")
    callbacks: Literal["count", "ignore"] = "ignore"
    transfers: Literal["count", "ignore"] = "count"


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict):
        return Reject("expected a JSON object (an EventBridge event)")
    detail = payload.get("detail")
    if not isinstance(detail, dict) or payload.get("detail-type") not in (None, "Amazon Connect Contact Event"):
        return Reject("not an Amazon Connect contact event (detail-type `Amazon Connect Contact Event`)")
    etype, contact = detail.get("eventType"), text(detail.get("contactId"))
    if not isinstance(etype, str) or contact is None:
        return Reject("contact event without eventType or contactId")
    opts: Options = ctx.options
    if str(detail.get("channel", "VOICE")).upper() not in opts.channels:
        return []
    method = str(detail.get("initiationMethod", "")).upper()
    if (method == "CALLBACK" and opts.callbacks == "ignore") or (method == "TRANSFER" and opts.transfers == "ignore"):
        return []
    queue_arn = text(get(detail, "queueInfo.queueArn"), 2048)
    enqueued = timestamp(get(detail, "queueInfo.enqueueTimestamp"))
    connected = timestamp(get(detail, "agentInfo.connectedToAgentTimestamp"))
    queue = ctx.queue(queue_arn.rsplit("/", 1)[-1]) if queue_arn else None
    if queue_arn and queue_arn in opts.queues:
        queue = opts.queues[queue_arn]

    def ev(type_: str, at: str | None, **fields) -> Mapped:
        if at is None or queue is None:
            return Reject(f"{etype} without the queue or the timestamp it needs")
        return [ctx.call(contact, queue, at, type_, ctx.event_id(contact, etype), **fields)]

    if etype == "QUEUED":
        return ev("offered", enqueued)
    if etype == "CONNECTED_TO_AGENT":
        return ev("answered", connected)
    if etype == "DISCONNECTED":
        if enqueued is None or connected is not None:
            return []  # never queued (IVR), or answered: COMPLETED brings the end with the after-contact work
        return ev("abandoned", timestamp(detail.get("disconnectTimestamp")))
    if etype == "COMPLETED":
        if connected is None:
            return []
        acw = get(detail, "agentInfo.afterContactWorkDuration")
        wrapup = float(acw) if isinstance(acw, (int, float)) and not isinstance(acw, bool) and 0 <= acw <= 86400 \
            else None
        return ev("ended", timestamp(detail.get("disconnectTimestamp")), wrapup_seconds=wrapup)
    return []
