"""`slamon explain ITEM`: an item's SLA timeline from the store (`--store URL`) or from a replay (`--events FILE`).

The replay path runs the whole file through the engine (as `slamon replay` does) and keeps the events of the item
the engine accepted (duplicates, late and expired events are not), then lets `monitor.explain` apply them in
order; the store path reads the item's rows (`store.db`). Table for people, JSON (`--format json`) for tools.
"""

from __future__ import annotations

import sys

import orjson

from monitor.errors import EXIT_OK, SlamonError


class ExplainError(SlamonError):
    """The item cannot be explained as asked (unknown, ambiguous, no source)."""


def _dicts(store, table: str, where: str, params: tuple) -> list[dict]:
    from store.records import COLUMNS

    rows = store.query(f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE {where}", params)
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def store_explanation(store, contracts, item: str, client: str | None = None):
    from monitor.explain import explain_decisions

    where, params = ("item = ? AND client = ?", (item, client)) if client else ("item = ?", (item,))
    decisions = _dicts(store, "sla_decisions", where, params)
    withdrawn = _dicts(store, "sla_withdrawals", where, params)
    clients = sorted({r["client"] for r in decisions + withdrawn})
    if not clients:
        raise ExplainError(f"{item} is not in the store at {store.url}" + (f" for {client}" if client else ""),
                           hint="check the id (and --client); the store holds decided items only, and retention "
                                "removes old ones")
    if len(clients) > 1:
        raise ExplainError(f"{item} is an item of {', '.join(clients)}", hint="give --client NAME")
    name = clients[0]
    if name not in contracts.clients:
        raise ExplainError(f"client {name!r} of {item} is not in the contracts")
    return explain_decisions(contracts, name, item, [r for r in decisions if r["client"] == name],
                             [r for r in withdrawn if r["client"] == name])


def events_explanation(lines, contracts, item: str, client: str | None = None, at_us: int | None = None):
    from monitor.engine import Engine
    from monitor.events import CallEvent, Rejection, TicketEvent, decode_event
    from monitor.explain import explain_call, explain_ticket

    engine = Engine(contracts)
    mine: dict[str, list] = {}
    needle = item.encode()
    for line in lines:
        event = decode_event(line, contracts.clients)
        if isinstance(event, Rejection):
            continue
        if at_us is not None and event.ts_us > at_us:
            continue
        accepted = engine.ingest(event) is None
        if not accepted or needle not in line:
            continue
        ours = (isinstance(event, TicketEvent) and event.ticket_id == item) or \
            (isinstance(event, CallEvent) and event.call_id == item)
        if ours and (client is None or event.client == client):
            mine.setdefault(event.client, []).append(event)
    if not mine:
        raise ExplainError(f"no accepted event of {item} in the events" + (f" for {client}" if client else ""),
                           hint="check the id (and --client)")
    if len(mine) > 1:
        raise ExplainError(f"{item} is an item of {', '.join(sorted(mine))}", hint="give --client NAME")
    (name, events), = mine.items()
    at = at_us if at_us is not None else max(engine.now_us, 0)
    explain = explain_ticket if isinstance(events[0], TicketEvent) else explain_call
    return explain(contracts, name, item, events, at)


def run_explain(args, contracts_path: str) -> int:
    from monitor.contracts import load_contracts
    from monitor.explain import render_table
    from slamon.inputs import instant, open_events

    if (args.store is None) == (args.events is None):
        raise ExplainError("give --store URL or --events FILE (one of them)")
    contracts = load_contracts(contracts_path)
    if args.store is not None:
        from store.db import open_store

        with open_store(args.store) as store:
            store.check_schema()
            e = store_explanation(store, contracts, args.item, args.client)
    else:
        at = instant(args.at) if args.at else None
        with open_events(args.events) as stream:
            e = events_explanation(stream, contracts, args.item, args.client, at)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(e.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(render_table(e))
    return EXIT_OK
