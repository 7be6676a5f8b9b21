"""Ticket clocks: every definition of spec section 3 for first response and resolution."""

import pytest

from tests.builders import run, ticket, us

CONTRACT = """
clients:
  acme:
    timezone: Europe/Berlin
    calendar:
      hours: {mon-fri: "08:00-18:00"}
      holidays: {country: DE, subdivision: BE, dates: [2026-12-24]}
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h, P2: 4h}, objective: 0.9}
      - name: res
        kind: resolution
        target: {P1: 8h, P2: 2d}
        objective: 0.9
        time: calendar
        pause_statuses: [waiting_on_customer]
"""
# 2026-11-02 is a Monday; 2026-11-06 a Friday. Berlin is UTC+1 in November.


def rec(records, sla, period="2026-11"):
    return records[(sla, period)]


def test_reply_before_deadline_is_good():
    _, r = run(CONTRACT, [ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1"),
                          ticket("2026-11-02T09:59:59+01:00", "T1", "agent_reply")], "2026-11-02T12:00:00+01:00")
    assert (rec(r, "fr").decided, rec(r, "fr").good, rec(r, "fr").bad) == (1, 1, 0)


def test_reply_exactly_at_deadline_is_met():
    _, r = run(CONTRACT, [ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1"),
                          ticket("2026-11-02T10:00:00+01:00", "T1", "agent_reply")], "2026-11-02T12:00:00+01:00")
    assert rec(r, "fr").good == 1 and rec(r, "fr").bad == 0


def test_breach_is_decided_at_the_deadline_without_any_event():
    events = [ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1")]
    _, before = run(CONTRACT, events, "2026-11-02T09:59:59.999999+01:00")
    assert rec(before, "fr").decided == 0 and rec(before, "fr").open == 1
    _, at = run(CONTRACT, events, "2026-11-02T10:00:00+01:00")
    assert rec(at, "fr").bad == 1 and rec(at, "fr").breaches == ["T1"]


def test_business_hours_carry_a_friday_evening_ticket_to_monday():
    # Friday 17:00 + 4 business hours = 1 h on Friday + 3 h on Monday -> Monday 11:00.
    events = [ticket("2026-11-06T17:00:00+01:00", "T1", "created", priority="P2")]
    _engine, r = run(CONTRACT, events, "2026-11-09T10:59:00+01:00")
    assert rec(r, "fr").open == 1 and rec(r, "fr").next_deadline_seconds == 60
    _, r = run(CONTRACT, events, "2026-11-09T11:00:00+01:00")
    assert rec(r, "fr").bad == 1


def test_ticket_created_on_a_holiday_starts_next_business_day():
    # 2026-12-24 is an explicit holiday, 25/26 are German holidays, 27 is Sunday -> Monday 28th 08:00 + 1 h.
    events = [ticket("2026-12-24T10:00:00+01:00", "T1", "created", priority="P1")]
    _, r = run(CONTRACT, events, "2026-12-28T08:59:59+01:00")
    assert rec(r, "fr", "2026-12").open == 1
    _, r = run(CONTRACT, events, "2026-12-28T09:00:00+01:00")
    assert rec(r, "fr", "2026-12").bad == 1


def test_breach_counts_in_the_period_of_its_deadline():
    # Created Monday 30 Nov 17:30, P1 1 h business -> deadline Tuesday 1 Dec 08:30: a December breach.
    events = [ticket("2026-11-30T17:30:00+01:00", "T1", "created", priority="P1")]
    _, r = run(CONTRACT, events, "2026-12-02T00:00:00+01:00")
    assert ("fr", "2026-11") not in r  # no decision in November
    assert rec(r, "fr", "2026-12").bad == 1


def test_pause_status_stops_the_resolution_clock():
    # 8 h calendar target; 5 h paused in the middle -> resolved after 12 h wall time is met.
    events = [
        ticket("2026-11-02T08:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:00:00+01:00", "T1", "status", status="waiting_on_customer"),
        ticket("2026-11-02T14:00:00+01:00", "T1", "status", status="in_progress"),
        ticket("2026-11-02T20:00:00+01:00", "T1", "resolved"),
    ]
    _, r = run(CONTRACT, events, "2026-11-03T00:00:00+01:00")
    assert rec(r, "res").good == 1
    assert rec(r, "res").latency_seconds["p50"] == pytest.approx(7 * 3600, rel=0.011)


def test_paused_clock_never_breaches_while_paused():
    events = [
        ticket("2026-11-02T08:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:00:00+01:00", "T1", "status", status="waiting_on_customer"),
    ]
    _, r = run(CONTRACT, events, "2026-11-20T00:00:00+01:00")
    assert rec(r, "res").decided == 0 and rec(r, "res").open == 1
    assert rec(r, "res").next_deadline_seconds is None


def test_priority_change_retargets_and_keeps_elapsed_time():
    # P2 (4 h business) created 09:00; at 09:30 raised to P1 (1 h): deadline becomes 10:00.
    events = [
        ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P2"),
        ticket("2026-11-02T09:30:00+01:00", "T1", "priority", priority="P1"),
    ]
    _, r = run(CONTRACT, events, "2026-11-02T09:59:00+01:00")
    assert rec(r, "fr").next_deadline_seconds == 60
    _, r = run(CONTRACT, events, "2026-11-02T10:00:00+01:00")
    assert rec(r, "fr").bad == 1


def test_priority_change_past_the_new_target_breaches_at_the_change():
    events = [
        ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P2"),
        ticket("2026-11-02T11:00:00+01:00", "T1", "priority", priority="P1"),
    ]
    engine, r = run(CONTRACT, events, "2026-11-02T11:00:00+01:00")
    assert rec(r, "fr").bad == 1
    clock = next(c for c in engine.tickets[("acme", "T1")].state.clocks if c.sla.name == "fr")
    assert clock.decided_us == us("2026-11-02T11:00:00+01:00")


def test_resolved_without_reply_decides_first_response_at_that_instant():
    events = [
        ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:20:00+01:00", "T1", "resolved"),
    ]
    _, r = run(CONTRACT, events, "2026-11-02T12:00:00+01:00")
    assert rec(r, "fr").good == 1 and rec(r, "res").good == 1


def test_reopen_withdraws_met_and_decides_again():
    events = [
        ticket("2026-11-02T08:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:00:00+01:00", "T1", "agent_reply"),
        ticket("2026-11-02T12:00:00+01:00", "T1", "resolved"),  # 4 h used, met
        ticket("2026-11-02T13:00:00+01:00", "T1", "reopened"),  # 4 h left -> deadline 17:00
    ]
    _, r = run(CONTRACT, events, "2026-11-02T12:30:00+01:00")
    assert rec(r, "res").good == 1
    _, r = run(CONTRACT, events, "2026-11-02T16:59:00+01:00")
    assert rec(r, "res").decided == 0 and rec(r, "res").open == 1
    assert rec(r, "fr").good == 1  # first response is never reopened
    _, r = run(CONTRACT, events, "2026-11-02T17:00:00+01:00")
    assert (rec(r, "res").good, rec(r, "res").bad) == (0, 1)


def test_a_breach_is_never_withdrawn_by_reopen():
    events = [
        ticket("2026-11-02T08:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T20:00:00+01:00", "T1", "resolved"),  # breached at 16:00
        ticket("2026-11-02T21:00:00+01:00", "T1", "reopened"),
        ticket("2026-11-02T22:00:00+01:00", "T1", "resolved"),
    ]
    _, r = run(CONTRACT, events, "2026-11-03T00:00:00+01:00")
    assert (rec(r, "res").decided, rec(r, "res").bad) == (1, 1)


def test_late_reply_withdraws_a_breach_decided_at_the_deadline():
    events = [
        ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1"),
        ticket("2026-11-02T10:30:00+01:00", "T2", "created", priority="P2"),  # moves time past T1's deadline
        ticket("2026-11-02T09:45:00+01:00", "T1", "agent_reply"),  # arrives late, within lateness
    ]
    engine, r = run(CONTRACT, events, "2026-11-02T10:30:00+01:00")
    assert (rec(r, "fr").good, rec(r, "fr").bad) == (1, 0)
    assert engine.stats.rebuilds == 1


def test_events_before_created_are_orphans_and_not_applied():
    events = [
        ticket("2026-11-02T09:10:00+01:00", "T1", "agent_reply"),
        ticket("2026-11-02T09:00:00+01:00", "T2", "created", priority="P1"),
    ]
    engine, r = run(CONTRACT, events, "2026-11-02T12:00:00+01:00")
    assert rec(r, "fr").bad == 1  # T2 breached; T1 never created
    assert engine.orphan_events() == 1


def test_late_created_adopts_held_events():
    events = [
        ticket("2026-11-02T09:10:00+01:00", "T1", "agent_reply"),
        ticket("2026-11-02T09:00:00+01:00", "T1", "created", priority="P1"),
    ]
    engine, r = run(CONTRACT, events, "2026-11-02T12:00:00+01:00")
    assert rec(r, "fr").good == 1 and engine.orphan_events() == 0


def test_calendar_time_is_real_elapsed_time_across_dst():
    # Berlin falls back on 2026-10-25 03:00 -> 02:00: 8 h of calendar time from 00:00+02:00 ends at 07:00+01:00.
    events = [ticket("2026-10-25T00:00:00+02:00", "T1", "created", priority="P1")]
    _, r = run(CONTRACT, events, "2026-10-25T06:59:59+01:00")
    assert rec(r, "res", "2026-10").open == 1
    _, r = run(CONTRACT, events, "2026-10-25T07:00:00+01:00")
    assert rec(r, "res", "2026-10").bad == 1


def test_at_risk_stages_and_breaching_soon():
    # P2 resolution is 2 d calendar; at 30 h elapsed the ticket is past 50% (24 h) but not 75% (36 h).
    events = [ticket("2026-11-02T00:00:00+01:00", "T1", "created", priority="P2")]
    _, r = run(CONTRACT, events, "2026-11-03T06:00:00+01:00")
    assert rec(r, "res").at_risk == {"0.5": 1, "0.75": 0, "0.9": 0}
    _, r = run(CONTRACT, events, "2026-11-03T23:45:00+01:00")
    assert rec(r, "res").at_risk["0.9"] == 1 and rec(r, "res").breaching_soon == 1


# The two corner cases of issue 17, as ../shared/SPEC.md reads: "Deadline = the instant the clock reaches the
# target"; only a *stop* at the deadline is met (a pause is not a stop).
SPEC_CORNERS = """
clients:
  acme:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, target: {P2: 4h, P3: 8h}, objective: 0.9, time: calendar}
      - {name: res, kind: resolution, target: {P1: 24h}, objective: 0.9, time: calendar,
         pause_statuses: ["Awaiting User Info"]}
"""


def _clock(engine, sla: str):
    return next(c for c in engine.tickets[("acme", "T1")].state.clocks if c.sla.name == sla)


def test_a_pause_exactly_at_the_deadline_is_a_breach_at_the_deadline():
    events = [
        ticket("2026-01-02T00:00:00+00:00", "T1", "created", priority="P1"),
        ticket("2026-01-02T00:10:00+00:00", "T1", "agent_reply"),
        ticket("2026-01-03T00:00:00+00:00", "T1", "status", status="Awaiting User Info"),
        ticket("2026-01-03T06:00:00+00:00", "T1", "resolved"),
    ]
    engine, r = run(SPEC_CORNERS, events, "2026-01-03T07:00:00+00:00")
    assert rec(r, "res", "2026-01").bad == 1
    assert _clock(engine, "res").decided_us == us("2026-01-03T00:00:00+00:00")


def test_a_pause_at_the_deadline_then_resume_dates_the_breach_at_the_deadline():
    events = [
        ticket("2026-01-02T00:00:00+00:00", "T1", "created", priority="P1"),
        ticket("2026-01-02T00:10:00+00:00", "T1", "agent_reply"),
        ticket("2026-01-03T00:00:00+00:00", "T1", "status", status="Awaiting User Info"),
        ticket("2026-01-03T06:00:00+00:00", "T1", "status", status="open"),
        ticket("2026-01-03T07:00:00+00:00", "T1", "resolved"),
    ]
    engine, r = run(SPEC_CORNERS, events, "2026-01-03T08:00:00+00:00")
    assert rec(r, "res", "2026-01").bad == 1
    assert _clock(engine, "res").decided_us == us("2026-01-03T00:00:00+00:00")


def test_a_pause_a_moment_before_the_deadline_holds_the_clock():
    events = [
        ticket("2026-01-02T00:00:00+00:00", "T1", "created", priority="P1"),
        ticket("2026-01-02T23:59:59+00:00", "T1", "status", status="Awaiting User Info"),
        ticket("2026-01-03T06:00:00+00:00", "T1", "resolved"),
    ]
    _, r = run(SPEC_CORNERS, events, "2026-01-03T07:00:00+00:00")
    assert rec(r, "res", "2026-01").good == 1


def test_a_priority_change_that_makes_elapsed_equal_the_target_sets_the_deadline_there():
    # P3 (8h) created 00:00; P2 (4h) at 04:00: elapsed equals the new target, so 04:00 is the deadline
    events = [
        ticket("2026-01-02T00:00:00+00:00", "T1", "created", priority="P3"),
        ticket("2026-01-02T04:00:00+00:00", "T1", "priority", priority="P2"),
        ticket("2026-01-02T04:00:00+00:00", "T1", "agent_reply"),
    ]
    _, r = run(SPEC_CORNERS, events, "2026-01-02T05:00:00+00:00")
    assert rec(r, "fr", "2026-01").good == 1  # a stop at the deadline is met
    engine, r = run(SPEC_CORNERS, events[:2], "2026-01-02T04:00:00.000001+00:00")
    assert rec(r, "fr", "2026-01").bad == 1  # without the reply: breached at the deadline
    assert _clock(engine, "fr").decided_us == us("2026-01-02T04:00:00+00:00")


def test_a_priority_change_on_a_paused_clock_that_reaches_the_new_target_breaches_there():
    contract = SPEC_CORNERS.replace("target: {P1: 24h}", "target: {P1: 24h, P2: 10h}")
    events = [
        ticket("2026-01-02T00:00:00+00:00", "T1", "created", priority="P1"),
        ticket("2026-01-02T10:00:00+00:00", "T1", "status", status="Awaiting User Info"),
        ticket("2026-01-02T12:00:00+00:00", "T1", "priority", priority="P2"),  # 10 h elapsed = the new target
    ]
    engine, r = run(contract, [*events, ticket("2026-01-02T12:00:00+00:00", "T1", "resolved")],
                    "2026-01-02T13:00:00+00:00")
    assert rec(r, "res", "2026-01").good == 1  # a stop at that instant is met
    engine, r = run(contract, events, "2026-01-02T13:00:00+00:00")
    assert rec(r, "res", "2026-01").bad == 1
    assert _clock(engine, "res").decided_us == us("2026-01-02T12:00:00+00:00")
