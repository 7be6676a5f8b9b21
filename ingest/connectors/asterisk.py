"""Asterisk `queue_log`: the file app_queue writes (`/var/log/asterisk/queue_log`), followed by the gateway
(`tails:` in its config; ingest/tail.py), no HTTP. One line per event (docs.asterisk.org, Queue Logs):

    epoch|callid|queue|member|EVENT|data1|data2|...

callid is the caller channel's uniqueid (NONE for queue-level events). Mapping (call_id = callid@queue, so a call
that overflows to another queue is a call there too):

| EVENT | data | slamon event |
|---|---|---|
| ENTERQUEUE | url, callerid | `offered` |
| CONNECT | holdtime, bridged channel, ringtime | `answered` |
| ABANDON | position, origposition, waittime | `abandoned` |
| EXITWITHTIMEOUT, EXITEMPTY | position, origposition, waittime | `abandoned` (option `timeout_as: ended`) |
| EXITWITHKEY | key, position | `ended` (the caller chose to leave: callback or voicemail menus) |
| COMPLETEAGENT, COMPLETECALLER | holdtime, calltime, origposition | `ended` (+ option `wrapup_seconds`) |
| TRANSFER, BLINDTRANSFER, ATTENDEDTRANSFER | | `ended` |
| RINGNOANSWER, AGENTLOGIN, PAUSE, ADDMEMBER, QUEUESTART... | | nothing |

Event ids: `<tail name>:callid:queue:EVENT:epoch` (queue_log has no event id): reading a line again after a
restart or a rotation produces the same ids, which the engine counts once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, text, timestamp

NAME = "asterisk"
BODY = "lines"
AUTH = None
TYPES = {"ENTERQUEUE": "offered", "CONNECT": "answered", "ABANDON": "abandoned", "EXITWITHTIMEOUT": "abandoned",
         "EXITEMPTY": "abandoned", "EXITWITHKEY": "ended", "COMPLETEAGENT": "ended", "COMPLETECALLER": "ended",
         "TRANSFER": "ended", "BLINDTRANSFER": "ended", "ATTENDEDTRANSFER": "ended"}


class Options(ConnectorOptions):
    timeout_as: Literal["abandoned", "ended"] = "abandoned"
    wrapup_seconds: float | None = Field(None, ge=0, le=86_400, description="the members' wrapuptime, if any")


def parse_line(line: str) -> dict[str, Any] | None:
    """The fields of a queue_log line (None for a line that is not one)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    return {"epoch": parts[0], "callid": parts[1], "queue": parts[2], "member": parts[3], "event": parts[4],
            "data": parts[5:]}


def map_payload(fields: Any, ctx: Context) -> Mapped:
    """One parsed line (parse_line) -> its events."""
    if not isinstance(fields, dict) or not isinstance(fields.get("event"), str):
        return Reject("not a queue_log line (epoch|callid|queue|member|EVENT|...)")
    event = fields["event"]
    type_ = TYPES.get(event)
    callid, queue = text(fields.get("callid")), text(fields.get("queue"))
    if type_ is None or callid in (None, "NONE", "REALTIME") or queue in (None, "NONE"):
        return []
    ts = timestamp(fields.get("epoch"))
    if ts is None:
        return Reject(f"{event}: epoch {str(fields.get('epoch'))[:20]!r} is not a time")
    opts: Options = ctx.options
    if event in ("EXITWITHTIMEOUT", "EXITEMPTY"):
        type_ = opts.timeout_as
    extra = {"wrapup_seconds": opts.wrapup_seconds} if type_ == "ended" and event.startswith("COMPLETE") else {}
    return [ctx.call(f"{callid}@{queue}"[:128], ctx.queue(queue), ts, type_,
                     ctx.event_id(callid, queue, event, fields["epoch"]), **extra)]


def map_lines(text_: str, source, name: str) -> Mapped:
    """Every line of a queue_log excerpt (tests, fuzzing): all events, or the first line's rejection."""
    out: list[dict] = []
    for line in text_.splitlines():
        if not line.strip():
            continue
        fields = parse_line(line)
        if fields is None:
            return Reject(f"not a queue_log line: {line[:60]!r}")
        client = source.client_for(fields)
        result = map_payload(fields, Context(client=client or "", source=name, options=source.parsed_options))
        if isinstance(result, Reject):
            return result
        out.extend(result)
    return out
