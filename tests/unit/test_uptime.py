"""Uptime from probes: holding state, unknown gaps, maintenance windows, late probes."""

import pytest

from tests.builders import probe, run

CONTRACT = """
clients:
  acme:
    timezone: UTC
    maintenance:
      - {start: "2026-11-02T10:00:00Z", end: "2026-11-02T10:10:00Z", services: [portal]}
    slas:
      - {name: up, kind: uptime, target: 0.99, service: portal, probe_interval: 60s}
"""


def rec(r):
    return r[("up", "2026-11")]


def test_state_holds_until_the_next_probe():
    events = [probe("2026-11-02T09:00:00Z", "up"), probe("2026-11-02T09:01:00Z", "down"),
              probe("2026-11-02T09:03:00Z", "up")]
    _, r = run(CONTRACT, events, "2026-11-02T09:04:00Z")
    assert (rec(r).good, rec(r).bad) == (120, 120)  # up 09:00-01 and 03-04, down 01-03
    assert rec(r).value == 0.5 and rec(r).unknown_seconds == 0


def test_gap_longer_than_three_intervals_is_unknown():
    events = [probe("2026-11-02T09:00:00Z", "up"), probe("2026-11-02T09:03:00Z", "up"),  # 180 s: known
              probe("2026-11-02T09:06:01Z", "down")]  # 181 s gap: unknown
    _, r = run(CONTRACT, events, "2026-11-02T09:07:01Z")
    assert rec(r).good == 180 and rec(r).unknown_seconds == 181 and rec(r).bad == 60


def test_live_tail_becomes_unknown_once_the_gap_exceeds_three_intervals():
    events = [probe("2026-11-02T09:00:00Z", "down")]
    _, r = run(CONTRACT, events, "2026-11-02T09:03:00Z")
    assert rec(r).bad == 180
    _, r = run(CONTRACT, events, "2026-11-02T09:03:01Z")
    assert rec(r).bad == 0 and rec(r).unknown_seconds == 181


def test_maintenance_is_excluded():
    events = [probe(f"2026-11-02T{h}:{m:02d}:00Z", "down") for h in ("09", "10") for m in range(0, 60, 1)]
    events = [e for e in events if e["ts"] <= "2026-11-02T10:20:00Z"]
    _, r = run(CONTRACT, events, "2026-11-02T10:20:00Z")
    assert rec(r).bad == 80 * 60 - 10 * 60  # 09:00-10:20 minus the 10-minute window


def test_late_probe_splits_the_segment_it_falls_in():
    events = [probe("2026-11-02T09:00:00Z", "up"), probe("2026-11-02T09:02:00Z", "up"),
              probe("2026-11-02T09:01:00Z", "down")]  # arrives last
    _, r = run(CONTRACT, events, "2026-11-02T09:03:00Z")
    assert (rec(r).good, rec(r).bad) == (120, 60)


def test_penalty_and_budget():
    events = [probe("2026-11-02T09:00:00Z", "up"), probe("2026-11-02T09:01:00Z", "down"),
              probe("2026-11-02T09:02:00Z", "up")]
    _, r = run(CONTRACT, events, "2026-11-02T09:03:00Z")
    # budget = 1% of 180 s = 1.8 s; 60 s down -> remaining 1 - 60/1.8
    assert rec(r).error_budget_remaining == pytest.approx(1 - 60 / 1.8)
