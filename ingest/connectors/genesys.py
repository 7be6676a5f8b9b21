"""Genesys Cloud conversation detail events, delivered in bulk by the Amazon EventBridge Source integration
(topic filter `v2.detail.events.conversation.{id}.acd.start|acd.end|acw`) and forwarded by an EventBridge rule to
an API destination pointing at the gateway (auth: API key header or Basic). The body is the EventBridge event
whose `detail` holds `topicName` and `eventBody` (a body of the topic itself, without the envelope, is taken too).

AcdStart: `eventTime` (ms), `conversationId`, `mediaType`, `queueId`. AcdEnd adds `acdOutcome` (ANSWERED,
ABANDON, FLOW_OUT...). Acw: `wrapupDurationMs` (at the end of the after-call work).

| topic | slamon events (call_id = conversationId:queueId: a transfer to another queue is a call there) |
|---|---|
| ...acd.start | `offered` |
| ...acd.end, ANSWERED | `answered` |
| ...acd.end, ABANDON | `abandoned` |
| ...acd.end, FLOW_OUT (left the queue to a flow: callback, voicemail) | `ended` (no answer, no abandon) |
| ...acw | `ended` at eventTime − wrapupDurationMs, with `wrapup_seconds` |

Media other than voice are not counted unless listed in `media_types`. Genesys' envelope id and redelivery
are not documented: event ids are conversationId:queueId + the topic's kind, the same on any redelivery.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, shift, text, timestamp

NAME = "genesys"
BODY = "json"
AUTH = "header"


class Options(ConnectorOptions):
    media_types: frozenset[str] = Field(frozenset({"voice"}), description="mediaType values counted as calls")


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict):
        return Reject("expected a JSON object (an EventBridge event from Genesys Cloud)")
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else payload
    topic, body = detail.get("topicName"), detail.get("eventBody")
    if not isinstance(topic, str) or not isinstance(body, dict):
        return Reject("no topicName/eventBody: not a Genesys Cloud notification")
    kind = next((k for k in ("acd.start", "acd.end", "acw") if topic.endswith("." + k)), None)
    if kind is None:
        return []
    media = body.get("mediaType")
    if isinstance(media, str) and media.lower() not in {m.lower() for m in ctx.options.media_types}:
        return []
    conversation, queue_id = text(body.get("conversationId")), text(body.get("queueId"))
    ts = timestamp(body.get("eventTime"))
    if conversation is None or ts is None:
        return Reject(f"{kind} event without conversationId or eventTime")
    if queue_id is None:
        return [] if kind == "acw" else Reject(f"{kind} event without queueId")
    call_id = f"{conversation}:{queue_id}"[:128]
    queue = ctx.queue(queue_id)
    eid = ctx.event_id(conversation, queue_id, kind)
    if kind == "acd.start":
        return [ctx.call(call_id, queue, ts, "offered", eid)]
    if kind == "acd.end":
        outcome = body.get("acdOutcome")
        type_ = {"ANSWERED": "answered", "ABANDON": "abandoned", "FLOW_OUT": "ended"}.get(outcome) \
            if isinstance(outcome, str) else None
        return [ctx.call(call_id, queue, ts, type_, eid)] if type_ else []
    wrap = body.get("wrapupDurationMs")
    if not isinstance(wrap, (int, float)) or isinstance(wrap, bool) or not 0 <= wrap <= 86_400_000:
        return Reject("acw event without a wrapupDurationMs")
    end = shift(ts, -wrap / 1000)
    if end is None:
        return Reject("acw event time out of range")
    return [ctx.call(call_id, queue, end, "ended", eid, wrapup_seconds=wrap / 1000)]
