"""Twilio TaskRouter: the workspace's Event Callback URL (Console > TaskRouter > Workspaces > Settings), a form
POST per event, signed with the account's auth token (`X-Twilio-Signature`). Parameters used: `EventType`,
`TaskSid`, `TaskQueueSid`/`TaskQueueName`, `TaskChannelUniqueName`, `ReservationSid`, `Timestamp` (epoch
seconds; `TimestampMs` when present), `TaskCanceledReason`.

| TaskRouter event | slamon events (call_id = TaskSid; queue = TaskQueueName, or the sid renamed by `queues`) |
|---|---|
| task-queue.entered | `offered` |
| reservation.accepted | `answered` |
| task.canceled (the caller hung up while waiting), workflow.timeout | `abandoned` |
| task.wrapup (the conversation ended; wrap-up starts) | `ended` |
| task.completed (without a wrap-up phase the end is here; the earlier `ended` wins) | `ended` |
| reservation.created/rejected/timeout, worker.*, task.updated... | nothing |

Tasks of channels other than `voice` are not counted unless listed in `channels`. Event ids: TaskSid +
EventType (+ ReservationSid): the same on a retried callback. A transfer to another queue enters that queue
again under the same task: the first `offered` wins (a transfer is not a new call here). Answer 204 (Twilio's
docs ask for 204 within 15 s).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, text, timestamp

NAME = "twilio"
BODY = "form"
AUTH = "twilio"
OK_STATUS = 204
TYPES = {"task-queue.entered": "offered", "reservation.accepted": "answered", "task.canceled": "abandoned",
         "workflow.timeout": "abandoned", "task.wrapup": "ended", "task.completed": "ended"}


class Options(ConnectorOptions):
    channels: frozenset[str] = Field(frozenset({"voice"}), description="TaskChannelUniqueName values counted")


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict) or not isinstance(payload.get("EventType"), str):
        return Reject("not a TaskRouter event callback (no EventType)")
    type_ = TYPES.get(payload["EventType"])
    if type_ is None:
        return []
    task = text(payload.get("TaskSid"))
    ts = timestamp(payload.get("TimestampMs")) or timestamp(payload.get("Timestamp"))
    if task is None or ts is None:
        return Reject(f"{payload['EventType']} without TaskSid or Timestamp")
    channel = payload.get("TaskChannelUniqueName")
    if isinstance(channel, str) and channel and channel not in ctx.options.channels:
        return []
    sid, name = text(payload.get("TaskQueueSid")), text(payload.get("TaskQueueName"))
    if sid and sid in ctx.options.queues:
        queue = ctx.options.queues[sid]
    elif name or sid:
        queue = ctx.queue(name or sid)
    else:
        return Reject(f"{payload['EventType']} without TaskQueueName or TaskQueueSid")
    parts = [task, payload["EventType"]]
    if payload["EventType"].startswith("reservation."):
        parts.append(text(payload.get("ReservationSid")) or "")
    return [ctx.call(task, queue, ts, type_, ctx.event_id(*parts))]
