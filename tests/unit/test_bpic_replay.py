"""`slamon replay` on the real BPIC 2013 log, checked against an independent calculation for a handful
of tickets (business hours walked day by day with zoneinfo + holidays, no slamon calendar code)."""

from __future__ import annotations

import csv
import os
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import orjson
import pytest

from monitor import compiled_replay
from monitor.contracts import load_contracts
from monitor.engine import Engine
from monitor.events import to_us
from monitor.importers.bpic2013 import convert
from monitor.replay import replay_lines

DATASETS = Path(os.environ.get("SLAMON_DATASETS", Path(__file__).parents[3] / "shared" / "datasets"))
CSV = DATASETS / "bpic2013-volvo-incidents" / "VINST-new.csv"
CONTRACTS = Path(__file__).parents[2] / "examples" / "bpic2013-contracts.yaml"
pytestmark = [pytest.mark.dataset, pytest.mark.skipif(not CSV.exists(), reason=f"{CSV} not present")]

TZ = ZoneInfo("Europe/Stockholm")
SE = holidays.country_holidays("SE", years=range(2010, 2013))
WAITS = {"Wait", "Wait - User", "Wait - Implementation", "Wait - Vendor", "Wait - Customer"}
PRIORITY = {"Major": "P1", "High": "P2", "Medium": "P3", "Low": "P4"}
RESPONSE = {"P1": 30 * 60, "P2": 3600, "P3": 4 * 3600, "P4": 9 * 3600}
RESOLUTION = {"P1": 9 * 3600, "P2": 27 * 3600, "P3": 45 * 3600, "P4": 90 * 3600}


def business_seconds(a: datetime, b: datetime) -> float:
    """Mon-Fri 08:00-17:00 Stockholm time outside Swedish holidays, by walking local days."""
    total, day = 0.0, a.astimezone(TZ).date() - timedelta(days=1)
    while day <= b.astimezone(TZ).date():
        if day.weekday() < 5 and day not in SE:
            lo = datetime.combine(day, time(8), TZ)
            hi = datetime.combine(day, time(17), TZ)
            total += max(0.0, (min(hi, b) - max(lo, a)).total_seconds())
        day += timedelta(days=1)
    return total


def rows_by_sr() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with CSV.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["SR Number"], []).append(row)
    return out


def expected(rows: list[dict]) -> tuple[bool, bool]:
    """(first response met, resolution met) for an SR that is never reopened, by hand."""
    ts = [datetime.fromisoformat(r["Change Date+Time"]) for r in rows]
    prio = PRIORITY[rows[0]["SR Latest Impact"]]
    done = next(i for i, r in enumerate(rows) if r["Status"] == "Completed")
    accept = next((i for i, r in enumerate(rows) if (r["Status"], r["Sub Status"]) == ("Accepted", "In Progress")),
                  done)
    reply_at = ts[min(accept, done)]
    response_ok = business_seconds(ts[0], reply_at) <= RESPONSE[prio]
    worked = sum(business_seconds(ts[i], ts[i + 1]) for i in range(done) if rows[i]["Sub Status"] not in WAITS)
    return response_ok, worked <= RESOLUTION[prio]


def hand_picked(by_sr: dict[str, list[dict]]) -> list[str]:
    """Eight SRs never reopened: queued first or not, with waits or not, short and long, and some with
    late first replies (deterministic)."""
    picked: list[str] = []
    for sr, rows in by_sr.items():
        done = [i for i, r in enumerate(rows) if r["Status"] == "Completed"]
        if not done or any(r["Status"] in ("Accepted", "Queued") for r in rows[done[0]:]):
            continue
        queued_first = rows[0]["Status"] == "Queued"
        waits = any(r["Sub Status"] in WAITS for r in rows)
        span = datetime.fromisoformat(rows[done[0]]["Change Date+Time"]) - datetime.fromisoformat(
            rows[0]["Change Date+Time"])
        kind = (queued_first, waits, span > timedelta(days=3))
        late_reply = queued_first and not expected(rows)[0]
        if sum(1 for p in picked if _kind(by_sr[p]) == kind) < 1 or (late_reply and len(picked) < 8):
            picked.append(sr)
        if len(picked) == 8:
            break
    return picked


def _kind(rows):
    done = next(i for i, r in enumerate(rows) if r["Status"] == "Completed")
    span = datetime.fromisoformat(rows[done]["Change Date+Time"]) - datetime.fromisoformat(rows[0]["Change Date+Time"])
    return rows[0]["Status"] == "Queued", any(r["Sub Status"] in WAITS for r in rows), span > timedelta(days=3)


@pytest.fixture(scope="module")
def replayed():
    contracts = load_contracts(CONTRACTS)
    engine = Engine(contracts)
    lines = [orjson.dumps(e) for e in convert(CSV)]
    result = replay_lines(lines, contracts, engine=engine)
    return engine, result


def test_the_whole_log_replays_without_rejections(replayed):
    _, result = replayed
    assert result.accepted == result.lines and not result.rejected
    months = {r.period for r in result.records if r.sla == "resolution"}
    assert {"2010-04", "2012-05"} <= months
    decided = sum(r.decided for r in result.records if r.sla == "resolution")
    assert 7_000 < decided <= 7_554


def test_hand_worked_tickets_match(replayed):
    engine, _ = replayed
    by_sr = rows_by_sr()
    picked = hand_picked(by_sr)
    assert len(picked) >= 5
    for sr in picked:
        clocks = {c.sla.name: c for c in engine.tickets[("volvo-it", sr)].state.clocks}
        response_ok, resolution_ok = expected(by_sr[sr])
        assert (clocks["response"].good, clocks["resolution"].good) == (response_ok, resolution_ok), sr


def test_report_breach_lists_agree_with_ticket_outcomes(replayed):
    engine, result = replayed
    listed = {sr for r in result.records if r.sla == "resolution" for sr in r.breaches}
    breached = {tid for (_, tid), item in engine.tickets.items()
                for c in item.state.clocks if c.sla.name == "resolution" and c.good is False}
    assert listed == breached and len(breached) > 100


@pytest.mark.skipif(not compiled_replay.IN_USE, reason="the compiled engine loop is not in use here")
def test_the_compiled_loop_gives_the_reference_report_on_the_real_log(replayed):
    """The fixture replays through the Python engine (it passes one); without an engine the compiled loop runs."""
    _, reference = replayed
    contracts = load_contracts(CONTRACTS)
    for at in (None, "2011-06-30T12:00:00Z"):
        at_us = None if at is None else to_us(datetime.fromisoformat(at))
        compiled = replay_lines([orjson.dumps(e) for e in convert(CSV)], contracts, at_us)
        python = reference if at is None else replay_lines([orjson.dumps(e) for e in convert(CSV)], contracts, at_us,
                                                           engine=Engine(contracts))
        assert compiled.pipeline() == python.pipeline()
        assert [r.as_dict() for r in compiled.records] == [r.as_dict() for r in python.records]
