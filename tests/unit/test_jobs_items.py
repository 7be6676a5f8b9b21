"""`--jobs N` split by item (slamon/jobs.py): what ties a client's items together across jobs, each point against the
one-process replay: lateness against the client's newest event over every job, float sums of the mean kinds, the
reader's event times."""

from __future__ import annotations

import zlib

import orjson
import pytest

from monitor.contracts import load_contracts
from monitor.engine import Engine
from monitor.events import decode_event
from monitor.formats import to_csv, to_json
from monitor.replay import replay_lines
from slamon.jobs import _ts_us, replay
from tests.builders import us
from tests.unit.test_jobs import _traffic

CONTRACTS = load_contracts("examples/contracts.yaml")
CLIENT = "acme-retail"
MIN = 60_000_000


def _short_lateness(minutes: int):
    """The example contracts with every client's allowed lateness `minutes`."""
    clients = {name: c.model_copy(update={"allowed_lateness": None}) for name, c in CONTRACTS.clients.items()}
    return CONTRACTS.model_copy(update={"allowed_lateness": minutes * MIN, "clients": clients})


def _job_of(item: str, jobs: int = 2) -> int:
    return zlib.crc32(item.encode()) % jobs


def _ids(prefix: str, job: int, count: int = 1) -> list[str]:
    """Item ids that the split puts on `job` (of 2)."""
    out, i = [], 0
    while len(out) < count:
        i += 1
        if _job_of(f"{prefix}{i}") == job:
            out.append(f"{prefix}{i}")
    return out


def _ticket(eid: str, ticket: str, ts: str, kind: str = "created", **extra) -> bytes:
    event = {"event_id": eid, "kind": "ticket", "client": CLIENT, "ts": ts, "ticket_id": ticket, "type": kind}
    if kind == "created":
        event.update(priority="P2", queue="orders", channel="email")
    return orjson.dumps({**event, **extra})


def _call(eid: str, call: str, ts: str, kind: str = "offered") -> bytes:
    return orjson.dumps({"event_id": eid, "kind": "call", "client": CLIENT, "ts": ts, "call_id": call,
                         "queue": "orders", "type": kind})


def _same(lines: list[bytes], contracts=CONTRACTS, jobs: int = 2):
    one, many = replay(lines, contracts, jobs=1), replay(lines, contracts, jobs=jobs)
    assert to_json(many) == to_json(one) and to_csv(many) == to_csv(one)
    assert many.pipeline() == one.pipeline()
    return one


def test_an_event_late_only_by_another_jobs_events_is_late():
    """The ticket's job has seen nothing of the client newer than 10:00, so by its own events 10:30 is in time;
    a call on the other job at 12:00 made the client's watermark 12:00, and one process rejects 10:30 as late."""
    (ticket,), (call,) = _ids("T", 0), _ids("C", 1)
    lines = [_ticket("e1", ticket, "2026-11-02T10:00:00Z"),
             _call("e2", call, "2026-11-02T12:00:00Z"),
             _ticket("e3", ticket, "2026-11-02T10:30:00Z", "agent_reply"),  # 90 min behind: late
             _ticket("e4", ticket, "2026-11-02T11:30:00Z", "agent_reply")]  # 30 min behind: in time
    own = replay_lines([lines[0], lines[2], lines[3]], CONTRACTS)
    assert own.rejected["late"] == 0  # what the ticket's job alone would say
    one = _same(lines)
    assert one.rejected["late"] == 1 and one.accepted == 3


def test_an_event_ahead_that_is_rejected_does_not_move_the_watermark():
    """An invalid line (an unknown event type) from far ahead: the reader counts its time in its bound, so later lines
    are asked about; the exact watermark (accepted events only) keeps them in time, as in one process."""
    (ticket,), (other,) = _ids("T", 0), _ids("T", 1)
    lines = [_ticket("e1", ticket, "2026-11-02T10:00:00Z"),
             _ticket("e2", other, "2026-11-02T15:00:00Z", "teleported"),
             _ticket("e3", ticket, "2026-11-02T10:20:00Z", "agent_reply"),
             _ticket("e4", other, "2026-11-02T10:25:00Z"),
             _ticket("e5", ticket, "2026-11-02T10:40:00Z", "resolved")]
    one = _same(lines)
    assert one.rejected == {"invalid": 1} and one.accepted == 4


@pytest.mark.parametrize("jobs", [2, 3])
def test_many_lines_asked_about_with_a_short_lateness(jobs):
    """5 minutes of lateness against 20 minutes of disorder and repeats: thousands of lines are late or near it,
    and the jobs ask each other about each (no deadlock with three); the report and counts are one process's."""
    contracts = _short_lateness(5)
    lines = _traffic(hours=6, seed=11)
    one = _same(lines, contracts, jobs)
    assert one.rejected["late"] > 1_000 and one.duplicates > 0


def test_mean_kinds_merge_exactly_from_any_split():
    """ASA and AHT are total seconds / calls. The totals are whole microseconds, so two jobs' partial sums, merged,
    are one process's sum exactly (float seconds differed in the last bits), and so is the report's value."""
    lines = _traffic(hours=30, seed=5)
    one_engine, parts = Engine(CONTRACTS), [Engine(CONTRACTS), Engine(CONTRACTS)]
    for line in lines:
        event = decode_event(line, CONTRACTS.clients)
        if hasattr(event, "ts_us"):
            one_engine.ingest(event)
            item = getattr(event, "call_id", None) or getattr(event, "ticket_id", None)
            parts[_job_of(item) if item else 0].ingest(event)
    compared = 0
    for key in (("acme-retail", "asa"), ("acme-retail", "aht")):
        for label, tally in one_engine.ledgers[key].periods.items():
            merged = sum(p.ledgers[key].periods[label].total_us for p in parts if label in p.ledgers[key].periods)
            assert type(tally.total_us) is int and merged == tally.total_us
            compared += 1
    assert compared >= 2 and all(p.ledgers[key].periods for p in parts)  # a period of each kind; calls in both parts
    one, many = replay(lines, CONTRACTS, jobs=1), replay(lines, CONTRACTS, jobs=2)
    values = lambda r: [(x.sla, x.period, x.value, x.projected) for x in r.records if x.sla in ("asa", "aht")]  # noqa: E731
    assert values(many) == values(one) and to_json(many) == to_json(one)


@pytest.mark.parametrize("text", [
    "2026-11-02T10:04:05.123Z", "2026-11-02T10:04:05Z", "2026-11-02T10:04:05.1Z", "2026-11-02T10:04:05.123456Z",
    "2026-11-02T10:04:05.12345+01:00", "2026-11-02T10:04:05-05:30", "2026-03-29T01:59:59.999Z",
    "2024-02-29T23:59:59.000Z", "1970-01-01T00:00:00.000Z", "2099-12-31T23:59:59.999Z",
])
def test_the_readers_event_time_is_the_decoders(text):
    line = orjson.dumps({"event_id": "e", "kind": "probe", "client": "globex-bank", "ts": text,
                         "service": "portal", "status": "up"})
    assert _ts_us(text) == decode_event(line, CONTRACTS.clients).ts_us


@pytest.mark.parametrize("text", ["2026-11-02T10:04:60.000Z", "2026-02-30T10:04:05.000Z", "2026-11-02 10:04:05Z",
                                  "2026-11-02T10:04:05.12a Z", "2026-11-02T1٠:04:05.123Z", "yesterday"])
def test_a_time_the_reader_cannot_read_is_left_to_the_decoder(text):
    assert _ts_us(text) is None


def test_a_report_instant_and_repeats_on_items():
    lines = _traffic(hours=8, seed=2)
    cut = us("2026-11-02T07:00:00+00:00")
    one, many = replay(lines, CONTRACTS, cut, jobs=1), replay(lines, CONTRACTS, cut, jobs=3)
    assert one.after_at > 0 and to_json(many) == to_json(one) and many.pipeline() == one.pipeline()


def test_the_watermark_history_trimmed_while_the_jobs_ask(monkeypatch):
    """Small chunks and a short history: the jobs trim what no one can ask about any more while hundreds of lines
    are asked about; the answers stay exact."""
    import slamon.jobs as jobs

    monkeypatch.setattr(jobs, "CHUNK", 64)
    monkeypatch.setattr(jobs, "QUEUE_CHUNKS", 2)
    monkeypatch.setattr(jobs, "SPREAD", (2 + 6) * 64)
    monkeypatch.setattr(jobs, "HISTORY_TRIM", 16)
    lines = _traffic(hours=8, seed=13)
    one = _same(lines, _short_lateness(5), jobs=3)
    assert one.rejected["late"] > 500 and len(lines) > 30 * 64
