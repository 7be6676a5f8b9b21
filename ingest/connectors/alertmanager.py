"""Prometheus Alertmanager webhook (`webhook_configs`, payload version 4), typically for blackbox_exporter probe
alerts (`probe_success == 0`). Alertmanager does not sign; give its `http_config.authorization` a
`credentials_file` and use the bearer scheme here.

Body: `version`, `status`, `receiver`, `groupLabels`, `commonLabels`, `alerts[{status, labels, startsAt, endsAt,
fingerprint}]`.

| alert | slamon events (service = the alert's `service` label, renamed by `services`) |
|---|---|
| firing | probe `down` at startsAt |
| resolved | probe `down` at startsAt and `up` at endsAt (the down again, in case the firing notice was missed) |
| alertname not in `alertnames` (when set), or no service label | nothing |

Event ids: fingerprint + startsAt + up/down: a repeated notification (repeat_interval, retries) is a duplicate.
Uptime needs samples: slamon holds a state from one probe to the next and a gap over 3 × probe_interval is
unknown time, so alerts alone (state changes only) leave gaps; pair this receiver with `slamon probe`, or
give the route a `repeat_interval` below 3 × the contract's probe_interval (this sends firing alerts again,
not resolved ones: see ingest/README.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.connectors.base import ConnectorOptions, Context, Mapped, Reject, text, timestamp

NAME = "alertmanager"
BODY = "json"
AUTH = "bearer"


class Options(ConnectorOptions):
    service_label: str = "service"
    services: dict[str, str] = Field(default_factory=dict, description="label value -> the contract's service")
    alertnames: frozenset[str] = Field(frozenset(), description="alerts that mean down (empty: every alert)")


def map_payload(payload: Any, ctx: Context) -> Mapped:
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return Reject("not an Alertmanager webhook (no `alerts` list)")
    opts: Options = ctx.options
    out: list[dict] = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            return Reject("an alert without labels")
        labels = alert["labels"]
        name = labels.get("alertname")
        if opts.alertnames and (not isinstance(name, str) or name not in opts.alertnames):
            continue
        raw = text(labels.get(opts.service_label))
        if raw is None:
            continue
        service = opts.services.get(raw, raw)
        fingerprint = text(alert.get("fingerprint"))
        start = timestamp(alert.get("startsAt"))
        if fingerprint is None or start is None:
            return Reject("an alert without fingerprint or startsAt")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            return Reject(f"alert status {status!r}: expected firing or resolved")

        def probe(state: str, at: str, fingerprint: str = fingerprint, key: str = start,
                  service: str = service) -> dict:
            return {"event_id": ctx.event_id(fingerprint, key, state), "kind": "probe", "client": ctx.client,
                    "ts": at, "service": service, "status": state}

        out.append(probe("down", start))
        if status == "resolved":
            end = timestamp(alert.get("endsAt"))
            if end is None or end < start:
                return Reject("a resolved alert without a usable endsAt")
            out.append(probe("up", end))
    return out
