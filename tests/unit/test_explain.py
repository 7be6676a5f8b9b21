"""`slamon explain`: an item's SLA timeline on hand-made tickets (pause, priority change, reopen, business hours,
holiday, breach with no event), a call, and the same item explained from the SLA record. Each outcome is checked
against the engine's own decision, and the wall-time totals must add up."""

from __future__ import annotations

import orjson
import pytest

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.events import decode_event
from monitor.explain import closed_gaps, explain_call, explain_decisions, explain_ticket, render_table
from tests.builders import us

CONTRACTS = """
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}, holidays: {dates: [2026-03-11]}}
    slas:
      - {name: first-response, kind: first_response, time: business, target: {P1: 1h, P2: 4h}, objective: 0.9}
      - {name: resolution, kind: resolution, time: business, target: {P1: 4h, P2: 8h, P3: 40h}, objective: 0.9,
         pause_statuses: [waiting_on_customer], period: week}
      - {name: resolution-24x7, kind: resolution, time: calendar, target: {P1: 24h}, objective: 0.9}
      - {name: vip-response, kind: first_response, time: calendar, target: {P1: 15m}, objective: 0.9, queues: [vip]}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: asa, kind: asa, target: 30s}
"""
# 2026-03-09 is a Monday; Berlin is UTC+1 in March (before the 29th).


@pytest.fixture(scope="module")
def contracts():
    return parse_contracts(CONTRACTS)


_n = iter(range(10**6))


def t(ts: str, tid: str, type_: str, **fields):
    return {"event_id": f"e{next(_n)}", "kind": "ticket", "client": "acme", "ts": ts, "ticket_id": tid,
            "type": type_, **fields}


def decoded(contracts, raw: list[dict]):
    return [decode_event(orjson.dumps(d), contracts.clients) for d in raw]


def engine_outcomes(contracts, events, at: int) -> dict[str, tuple[bool, int]]:
    engine = Engine(contracts, keep_decisions=True)
    for ev in events:
        assert engine.ingest(ev) is None
    engine.advance_to(at)
    live = {}
    for _, c, sign in engine.decisions:
        if sign > 0:
            live[c.sla] = (bool(c.good), c.at_us)
        else:
            live.pop(c.sla, None)
    return live


def check(contracts, raw: list[dict], at: str):
    """The explanation, checked against the engine: same outcomes and instants; totals add up."""
    events = decoded(contracts, raw)
    e = explain_ticket(contracts, "acme", raw[0]["ticket_id"], events, us(at))
    decided = engine_outcomes(contracts, events, us(at))
    for line in e.slas:
        if line.outcome in ("met", "breached"):
            assert decided[line.sla] == (line.outcome == "met", line.decided_us), line.sla
            wall = line.decided_us - line.start_us
        else:
            assert line.sla not in decided
            if line.outcome != "open":
                continue
            wall = us(at) - line.start_us
        parts = line.elapsed_us + line.paused_us + line.outside_hours_us + line.stopped_us
        assert parts == wall, (line.sla, line.elapsed_us, line.paused_us, line.outside_hours_us, line.stopped_us)
    text = render_table(e)
    assert raw[0]["ticket_id"] in text and e.as_dict()["slas"]
    orjson.dumps(e.as_dict())  # JSON for tools
    return {line.sla: line for line in e.slas}, text


def steps(line) -> list[str]:
    return [s.what for s in line.steps]


def test_pause_and_resume(contracts):
    lines, text = check(contracts, [
        t("2026-03-09T09:00:00+01:00", "P-1", "created", priority="P2", queue="billing"),
        t("2026-03-09T09:30:00+01:00", "P-1", "agent_reply"),
        t("2026-03-09T10:00:00+01:00", "P-1", "status", status="waiting_on_customer"),
        t("2026-03-09T12:00:00+01:00", "P-1", "status", status="in_progress"),
        t("2026-03-09T15:00:00+01:00", "P-1", "resolved"),
    ], "2026-03-10T00:00:00+01:00")
    res = lines["resolution"]
    assert res.outcome == "met" and res.elapsed_us == 4 * 3600_000_000 and res.paused_us == 2 * 3600_000_000
    assert steps(res) == ["created", "paused", "resumed", "met"]
    assert res.deadline_us == us("2026-03-10T09:00:00+01:00")  # 4 h left at 15:00: 3 h on Monday, 1 h on Tuesday
    assert res.period == "2026-W11"
    fr = lines["first-response"]
    assert fr.outcome == "met" and fr.elapsed_us == 1800_000_000 and steps(fr) == ["created", "met"]
    vip = lines["vip-response"]  # P1 only, and queue vip only
    assert vip.outcome == "not applicable" and "no target for priority P2" in vip.why
    assert "paused" in text and "waiting_on_customer" in text


def test_priority_change_retargets_then_breaches_at_the_deadline(contracts):
    lines, _ = check(contracts, [
        t("2026-03-09T09:00:00+01:00", "R-1", "created", priority="P3"),
        t("2026-03-09T11:00:00+01:00", "R-1", "priority", priority="P1"),
        t("2026-03-09T14:00:00+01:00", "R-1", "resolved"),
    ], "2026-03-09T20:00:00+01:00")
    res = lines["resolution"]
    assert steps(res) == ["created", "priority", "breached"]
    assert res.outcome == "breached" and res.decided_us == us("2026-03-09T13:00:00+01:00")  # 2 h kept + 2 h
    assert res.priority == "P1" and res.target_us == 4 * 3600_000_000 and "P3 -> P1" in res.steps[1].detail
    fr = lines["first-response"]  # applicability is decided at creation: P3 has no first-response target
    assert fr.outcome == "not applicable" and "no target for priority P3" in fr.why


def test_priority_change_past_the_new_target_breaches_at_the_change(contracts):
    lines, _ = check(contracts, [
        t("2026-03-09T09:00:00+01:00", "R-2", "created", priority="P3"),
        t("2026-03-09T14:00:00+01:00", "R-2", "priority", priority="P1"),
    ], "2026-03-09T20:00:00+01:00")
    res = lines["resolution"]
    assert res.outcome == "breached" and res.decided_us == us("2026-03-09T14:00:00+01:00")
    assert "already elapsed" in res.steps[-1].detail and res.elapsed_us == 5 * 3600_000_000


def test_reopen_withdraws_the_met_and_resumes(contracts):
    lines, text = check(contracts, [
        t("2026-03-09T09:00:00+01:00", "O-1", "created", priority="P1"),
        t("2026-03-09T09:10:00+01:00", "O-1", "agent_reply"),
        t("2026-03-09T10:00:00+01:00", "O-1", "resolved"),
        t("2026-03-09T11:00:00+01:00", "O-1", "reopened"),
        t("2026-03-09T12:30:00+01:00", "O-1", "resolved"),
    ], "2026-03-10T00:00:00+01:00")
    res = lines["resolution"]
    assert steps(res) == ["created", "met", "reopened", "met"]
    assert res.outcome == "met" and res.decided_us == us("2026-03-09T12:30:00+01:00")
    assert res.elapsed_us == 150 * 60_000_000 and res.stopped_us == 3600_000_000
    assert lines["first-response"].outcome == "met"  # first response is decided once, not reopened
    assert "withdrawn" in text


def test_business_hours_weekend_and_holiday(contracts):
    lines, _ = check(contracts, [
        t("2026-03-06T17:30:00+01:00", "B-1", "created", priority="P1"),  # Friday
        t("2026-03-09T08:20:00+01:00", "B-1", "agent_reply"),  # Monday
    ], "2026-03-09T09:00:00+01:00")
    fr = lines["first-response"]
    assert fr.outcome == "met" and fr.elapsed_us == 50 * 60_000_000
    assert fr.outside_hours_us == us("2026-03-09T08:00:00+01:00") - us("2026-03-06T18:00:00+01:00")
    gaps = [s for s in fr.steps if s.what == "outside hours"]
    assert len(gaps) == 1 and gaps[0].at_us == us("2026-03-06T18:00:00+01:00")
    assert fr.deadline_us == us("2026-03-09T08:30:00+01:00")
    calendar_time = lines["resolution-24x7"]  # 24 h of calendar time: nights and weekends count
    assert calendar_time.outcome == "breached" and calendar_time.decided_us == us("2026-03-07T17:30:00+01:00")
    assert calendar_time.outside_hours_us == 0
    lines, _ = check(contracts, [
        t("2026-03-10T17:30:00+01:00", "H-1", "created", priority="P1"),  # Tuesday; Wednesday the 11th is a holiday
    ], "2026-03-13T00:00:00+01:00")
    fr = lines["first-response"]
    assert fr.outcome == "breached" and fr.decided_us == us("2026-03-12T08:30:00+01:00")
    assert fr.outside_hours_us == us("2026-03-12T08:00:00+01:00") - us("2026-03-10T18:00:00+01:00")
    assert "deadline reached" in fr.steps[-1].detail


def test_closed_gaps_cover_nights_and_weekends(contracts):
    from monitor.engine import ClientModel

    cal = ClientModel.build("acme", contracts).calendars["first-response"]
    gaps = closed_gaps(cal, us("2026-03-06T12:00:00+01:00"), us("2026-03-10T12:00:00+01:00"))
    assert gaps == [(us("2026-03-06T18:00:00+01:00"), us("2026-03-09T08:00:00+01:00")),
                    (us("2026-03-09T18:00:00+01:00"), us("2026-03-10T08:00:00+01:00"))]


def test_a_call(contracts):
    raw = [{"event_id": f"c{i}", "kind": "call", "client": "acme", "ts": ts, "call_id": "C-1", "queue": "orders",
            "type": kind} for i, (ts, kind) in enumerate([("2026-03-09T10:00:00Z", "offered"),
                                                          ("2026-03-09T10:00:25Z", "answered"),
                                                          ("2026-03-09T10:05:00Z", "ended")])]
    e = explain_call(contracts, "acme", "C-1", decoded(contracts, raw))
    lines = {line.sla: line for line in e.slas}
    assert lines["sl"].outcome == "breached" and lines["sl"].elapsed_us == 25_000_000
    assert lines["sl"].margin_us == -5_000_000 and lines["sl"].period == "2026-03"
    assert lines["asa"].outcome == "measured" and lines["asa"].value == 25.0
    assert "answered after 25 s" in render_table(e)


def test_from_the_store(contracts, tmp_path):
    """The same ticket explained from the SLA record: decisions and the withdrawn one, in topic order."""
    from store.db import open_store
    from store.explain_cli import store_explanation
    from store.feed import load_topic, sla_topic

    raw = [
        t("2026-03-09T16:00:00+01:00", "O-2", "created", priority="P1"),
        t("2026-03-09T16:10:00+01:00", "O-2", "agent_reply"),
        t("2026-03-09T17:00:00+01:00", "O-2", "resolved"),
        t("2026-03-09T17:30:00+01:00", "O-2", "reopened"),
        t("2026-03-09T17:45:00+01:00", "O-2", "status", status="waiting_on_customer"),
        t("2026-03-10T08:30:00+01:00", "O-2", "status", status="in_progress"),
        t("2026-03-10T09:00:00+01:00", "O-2", "resolved"),
    ]
    with open_store(str(tmp_path / "r.db")) as store:
        store.migrate()
        load_topic(store, "t", sla_topic([orjson.dumps(d) for d in raw], contracts))
        e = store_explanation(store, contracts, "O-2")
    lines = {line.sla: line for line in e.slas}
    res = lines["resolution"]
    assert res.outcome == "met" and steps(res) == ["start", "withdrawn", "outside hours", "met"]
    assert res.decided_us == us("2026-03-10T09:00:00+01:00") and res.period == "2026-W11"
    assert res.elapsed_us == 105 * 60_000_000 and res.paused_us == 75 * 60_000_000  # not counted: 30m + 15m + 30m
    assert res.outside_hours_us == 14 * 3600_000_000  # Monday 18:00 to Tuesday 08:00
    from_events, _ = check(contracts, raw, "2026-03-10T10:00:00+01:00")
    same = from_events["resolution"]
    assert (same.elapsed_us, same.paused_us + same.stopped_us, same.decided_us, same.period) == \
        (res.elapsed_us, res.paused_us, res.decided_us, res.period)
    assert "withdrawn" in render_table(e)
    direct = explain_decisions(contracts, "acme", "O-2", [], [])
    assert direct.slas == []
