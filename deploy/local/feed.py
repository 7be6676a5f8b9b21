"""Live synthetic traffic for the demo: `slamon produce --generate`, paced in wall-clock time.

    python -m deploy.local.feed [--backfill 45m] [--hours 8] [--scenario SPEC ...] [--incidents 20m]

`slamon produce --generate HOURS` sends generated traffic as fast as possible (or at `--rate` events per
second, which does not follow the traffic's own timestamps). A worker on the wall clock dead-letters events
far ahead of its clock and decides deadlines by its clock, so a live demo needs events sent when their event
time comes. This module uses the same pieces (`monitor.simulation.generator.generate` for the traffic,
`streams.producer.produce` to send it keyed by client, the same SLAMON_* settings) and only adds the pacing:

* traffic is generated from now - BACKFILL to now + HOURS; the backfill is sent at once (the worker starts
  with a realistic state: open tickets, a queue, recent probes), then each event is sent when the wall clock
  reaches its timestamp;
* scenarios (generator scenarios, START relative to now and may be negative):
  KIND:CLIENT:START:DURATION[:FACTOR[:SERVICE_OR_QUEUE]], e.g. staffing_drop:acme-retail:-10m:40m:0.25;
* incidents: waves of urgent tickets of a 24/7 (calendar-time) first-response SLA, created so that their
  deadlines fall 90 s, 3 min and 5 min after the wave starts; the second gets its reply 30 s before its
  deadline (a near miss), the others breach. They drive the "breach imminent" and "last stage" warnings and
  the first breaches within minutes, whatever the time of day.

Settings (bootstrap servers, topic, contracts) come from SLAMON_* variables, as for `slamon produce`.
Progress lines go to stdout every `--report` seconds.
"""

from __future__ import annotations

import argparse
import heapq
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

US = 1_000_000
MINUTE_US = 60 * US


def now_us() -> int:
    return time.time_ns() // 1000


def signed_duration_us(text: str) -> int:
    from monitor.durations import parse_duration_us

    text = text.strip()
    if text.startswith("-"):
        return -parse_duration_us(text[1:])
    return parse_duration_us(text.lstrip("+"))


def parse_scenario(spec: str, origin_us: int, contracts):
    """KIND:CLIENT:START:DURATION[:FACTOR[:TARGET]] with START relative to `origin_us` (may be negative)."""
    from monitor.simulation.generator import DEFAULT_FACTOR, Scenario

    parts = spec.split(":")
    if len(parts) < 4:
        raise SystemExit(f"error: --scenario {spec!r}: expected KIND:CLIENT:START:DURATION[:FACTOR[:TARGET]]")
    kind, client, start, duration = parts[:4]
    if kind not in DEFAULT_FACTOR:
        raise SystemExit(f"error: --scenario {spec!r}: unknown kind {kind!r} ({', '.join(DEFAULT_FACTOR)})")
    if client not in contracts.clients:
        raise SystemExit(f"error: --scenario {spec!r}: client {client!r} is not in the contracts")
    try:
        at = origin_us + signed_duration_us(start)
        length = signed_duration_us(duration)
        factor = float(parts[4]) if len(parts) > 4 and parts[4] else None
    except ValueError as err:
        raise SystemExit(f"error: --scenario {spec!r}: {err}") from None
    target = parts[5] if len(parts) > 5 and parts[5] else None
    return Scenario(kind, client, at, length, factor, service=target if kind == "outage" else None,
                    queue=target if kind != "outage" else None)


def _fmt(us: int) -> str:
    return datetime.fromtimestamp(us / US, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ts_us(event: dict) -> int:
    from monitor.events import to_us

    return to_us(datetime.fromisoformat(event["ts"].replace("Z", "+00:00")))


def incident_sla(contracts):
    """(client, sla, priority, queue, channel) of the first calendar-time first-response SLA, most urgent
    priority; None when the contracts have none."""
    from monitor.contracts import TicketSla

    for name, client in contracts.clients.items():
        ticket_slas = [s for s in client.slas if isinstance(s, TicketSla)]
        for sla in ticket_slas:
            if not sla.stops_on_agent_reply or sla.time != "calendar":
                continue
            priority, _ = min(sla.target.items(), key=lambda kv: kv[1])
            # a queue that also has a resolution SLA, so the tickets show up there too
            queues = sorted(sla.queues) or sorted({q for s in ticket_slas for q in s.queues}) or [None]
            channel = sorted(sla.channels)[0] if sla.channels else None
            return name, sla, priority, queues[0], channel
    return None


def incident_wave(contracts, wave: int, at_us: int) -> list[tuple[int, dict]]:
    """Urgent tickets whose deadlines fall 90 s, 3 min and 5 min after `at_us` (see the module doc)."""
    found = incident_sla(contracts)
    if found is None:
        return []
    client, sla, priority, queue, channel = found
    target = sla.target[priority]
    out: list[tuple[int, dict]] = []
    for i, (deadline_in, reply_before) in enumerate(((90 * US, None), (3 * MINUTE_US, 30 * US),
                                                     (5 * MINUTE_US, None)), 1):
        tid = f"{client}-INC{wave:03d}-{i}"
        created = at_us + deadline_in - target
        base = {"kind": "ticket", "client": client, "ticket_id": tid}
        ev = {"event_id": f"{tid}-1", **base, "ts": _fmt(created), "type": "created", "priority": priority}
        if queue:
            ev["queue"] = queue
        if channel:
            ev["channel"] = channel
        out.append((created, ev))
        if reply_before is not None:
            t = at_us + deadline_in - reply_before
            out.append((t, {"event_id": f"{tid}-2", **base, "ts": _fmt(t), "type": "agent_reply"}))
            out.append((t, {"event_id": f"{tid}-3", **base, "ts": _fmt(t), "type": "status",
                            "status": "in_progress"}))
    return out


def timeline(contracts, args, origin_us: int) -> Iterator[tuple[int, dict]]:
    """(ts, event) of the generated traffic and the incident waves, in event-time order."""
    from monitor.simulation.generator import GeneratorConfig, generate

    start = origin_us - signed_duration_us(args.backfill)
    cfg = GeneratorConfig(
        start_us=start, duration_us=origin_us + round(args.hours * 3600 * US) - start, seed=args.seed,
        tickets_per_hour=args.tickets_per_hour, calls_per_hour=args.calls_per_hour, agents=args.agents,
        ticket_breach_rate=args.breach_rate,
        scenarios=[parse_scenario(s, origin_us, contracts) for s in args.scenario],
    )
    generated = ((_ts_us(e), e) for e in generate(contracts, cfg))
    streams = [generated]
    if args.incidents is not None:
        every = signed_duration_us(args.incidents)
        waves = []
        t, wave = origin_us, 1
        while t < cfg.end_us:
            waves.extend(incident_wave(contracts, wave, t))
            if every <= 0:
                break
            t += every
            wave += 1
        waves.sort(key=lambda item: item[0])
        streams.append(iter(waves))
    return heapq.merge(*streams, key=lambda item: item[0])


class Paced:
    """The lines of a timeline, each released when the wall clock reaches its event time."""

    def __init__(self, items: Iterator[tuple[int, dict]], report_every: float) -> None:
        self.items = items
        self.report_every = report_every
        self.sent = 0
        self.backfill_done = False
        self.stopping = False

    def __iter__(self) -> Iterator[bytes]:
        import orjson

        last_report = time.monotonic()
        for ts, event in self.items:
            while not self.stopping:
                ahead = (ts - now_us()) / US
                if ahead <= 0:
                    break
                if not self.backfill_done:
                    self.backfill_done = True
                    print(f"feed: backfill sent ({self.sent} events); now live", flush=True)
                time.sleep(min(ahead, 0.5))
                if time.monotonic() - last_report >= self.report_every:
                    last_report = time.monotonic()
                    print(f"feed: {self.sent} events sent, event time {_fmt(now_us())}", flush=True)
            if self.stopping:
                return
            self.sent += 1
            yield orjson.dumps(event)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.local.feed", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML settings file (SLAMON_* variables override it)")
    p.add_argument("--contracts", help="contracts file (default: the settings')")
    p.add_argument("--backfill", default="45m", help="traffic before now, sent at once (default 45m)")
    p.add_argument("--hours", type=float, default=8.0, help="hours of live traffic after now (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tickets-per-hour", type=float, default=20.0)
    p.add_argument("--calls-per-hour", type=float, default=60.0)
    p.add_argument("--agents", type=int, default=0)
    p.add_argument("--breach-rate", type=float, default=0.03)
    p.add_argument("--scenario", action="append", default=[], metavar="SPEC",
                   help="KIND:CLIENT:START:DURATION[:FACTOR[:SERVICE_OR_QUEUE]], START relative to now")
    p.add_argument("--incidents", metavar="EVERY",
                   help="waves of urgent tickets about to breach, the first now, then every EVERY (0: once)")
    p.add_argument("--report", type=float, default=30.0, help="seconds between progress lines")
    args = p.parse_args(argv)

    from monitor.contracts import load_contracts
    from streams.config import ConfigError, load_settings
    from streams.producer import produce

    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    contracts = load_contracts(args.contracts or settings.contracts)
    origin = now_us()
    paced = Paced(timeline(contracts, args, origin), args.report)

    def stop(signum, frame):
        paced.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"feed: {settings.kafka.bootstrap_servers} topic {settings.topics.events}; backfill {args.backfill}, "
          f"live for {args.hours:g} h, scenarios: {', '.join(args.scenario) or 'none'}, "
          f"incidents: {args.incidents or 'none'}", flush=True)
    result = produce(settings, paced)
    print(f"feed: sent {result.sent} events in {result.seconds:.0f}s, {result.failed} failed", flush=True)
    for err in result.errors:
        print(f"feed: error: {err}", flush=True)
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
