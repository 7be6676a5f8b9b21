"""Small builders for events and engines in tests."""

from __future__ import annotations

import itertools
from datetime import datetime

import orjson

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.events import decode_event, to_us
from monitor.report import build_report

_ids = itertools.count()


def us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


def raw(kind: str, ts: str, client: str = "acme", event_id: str | None = None, **fields) -> dict:
    return {"event_id": event_id or f"e{next(_ids)}", "kind": kind, "client": client, "ts": ts, **fields}


def ticket(ts: str, ticket_id: str, type_: str, **fields) -> dict:
    return raw("ticket", ts, ticket_id=ticket_id, type=type_, **fields)


def call(ts: str, call_id: str, type_: str, queue: str = "support", **fields) -> dict:
    return raw("call", ts, call_id=call_id, queue=queue, type=type_, **fields)


def probe(ts: str, status: str, service: str = "portal") -> dict:
    return raw("probe", ts, service=service, status=status)


def run(contracts_yaml: str, events: list[dict], at: str):
    """Engine fed with the events up to `at` in the given order (as `slamon replay --at` does), and its
    report at `at` as {(sla, period): record}."""
    contracts = parse_contracts(contracts_yaml)
    engine = Engine(contracts)
    for d in events:
        event = decode_event(orjson.dumps(d), contracts.clients)
        assert not hasattr(event, "reason"), event
        if event.ts_us <= us(at):
            engine.ingest(event)
    records = build_report(engine, us(at))
    return engine, {(r.sla, r.period): r for r in records}
