"""Property: the compiled replay loop (native/engine through monitor/compiled_replay.py) gives the same report and
pipeline counts as the Python engine, the reference, on arbitrary streams: disorder within and beyond the allowed
lateness, duplicates (resent and with reused ids), reopens inside and after the reopen window, priority changes
(to priorities with and without a target), pauses, orphans, calls in several queues, probes, surveys, audits,
junk lines, compaction and call eviction every few events, a report instant before, at and after the newest event.
"""

from __future__ import annotations

import io
import random

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import compiled_replay
from monitor import engine as engine_module
from monitor.contracts import parse_contracts
from monitor.events import format_us, to_us
from monitor.replay import replay_lines
from tests.property.test_fuzz_decoder import CONTRACTS as FUZZ_CONTRACTS
from tests.property.test_fuzz_decoder import VALID, to_json

pytestmark = pytest.mark.skipif(compiled_replay._native is None, reason="the compiled engine was not built")

CONTRACT = parse_contracts("""
allowed_lateness: 1h
reopen_window: 6h
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}, holidays: {dates: ["2026-11-04"]}}
    slas:
      - {name: fr, kind: first_response, target: {P1: 30m, P2: 2h}, objective: 0.9}
      - {name: res, kind: resolution, target: {P1: 4h, P2: 1d, P4: 10m}, objective: 0.9, time: calendar,
         pause_statuses: [waiting], period: day}
      - {name: resq, kind: resolution, target: {P2: 3h}, objective: 0.5, queues: [billing], channels: [email],
         period: week}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: slq, kind: service_level, target: 0.8, within: 30s, abandons: ignore, queues: [q2]}
      - {name: asa, kind: asa, target: 30s}
      - {name: ab, kind: abandon_rate, target: 0.1, short_abandon: 10s}
      - {name: aht, kind: aht, target: 300s}
      - {name: up, kind: uptime, target: 0.99, service: portal, probe_interval: 60s}
      - {name: csat, kind: csat, target: 0.8}
      - {name: csatm, kind: csat, target: 4, method: mean, good_score: 5}
      - {name: acc, kind: accuracy, target: 0.95}
  globex:
    timezone: America/New_York
    reopen_window: 1h
    allowed_lateness: 30m
    slas:
      - {name: fr, kind: first_response, target: {P1: 15m}, objective: 0.95, time: calendar, period: week}
      - {name: res, kind: resolution, target: {P1: 2h}, objective: 0.9, time: calendar, period: {rolling: 2d}}
      - {name: res7, kind: resolution, target: {P1: 3h}, objective: 0.9, period: {rolling: 7h}}
""")
START = to_us(__import__("datetime").datetime.fromisoformat("2026-10-30T07:30:00+01:00"))  # the DST change, a month end
MIN = 60_000_000
STEPS = ["agent_reply", "status:waiting", "status:open", "priority:P1", "priority:P2", "priority:P3", "priority:P4",
         "resolved", "reopened", "resolved", "closed", "customer_reply"]


def stream(seed: int, days: int, probe_gap: int = 1) -> list[bytes]:
    """`probe_gap`: probes that many times sparser (a long span stays small)."""
    rnd = random.Random(seed)
    events: list[tuple[int, dict]] = []
    n = 0

    def emit(t: int, kind: str, client: str, **fields) -> None:
        nonlocal n
        n += 1
        events.append((t, {"event_id": f"e{n}", "kind": kind, "client": client, "ts": format_us(t), **fields}))

    span = days * 1440
    for i in range(rnd.randint(5, 50)):
        client = rnd.choice(["acme", "globex"])
        t = START + rnd.randint(0, span) * MIN
        if rnd.random() < 0.1:  # orphans: events before the ticket is created, or a ticket never created
            emit(t - rnd.randint(1, 90) * MIN, "ticket", client, ticket_id=f"T{i}", type="agent_reply")
        if rnd.random() < 0.95:
            emit(t, "ticket", client, ticket_id=f"T{i}", type="created", priority=rnd.choice(["P1", "P2", "P4"]),
                 queue=rnd.choice(["billing", "tech"]), channel=rnd.choice(["email", "phone"]))
        for step in rnd.sample(STEPS, rnd.randint(0, 7)):
            t += rnd.choice([1, 5, 30, 120, 600, 900]) * MIN
            kind, _, value = step.partition(":")
            extra = {"status": value} if kind == "status" else {"priority": value} if kind == "priority" else {}
            emit(t, "ticket", client, ticket_id=f"T{i}", type=kind, **extra)
        if rnd.random() < 0.2:  # touched again days or weeks later: expired, or forgotten after the retention
            emit(t + rnd.randint(1, 45 * 1440) * MIN, "ticket", client, ticket_id=f"T{i}",
                 type=rnd.choice(["reopened", "agent_reply", "created"]), priority="P1")
    for i in range(rnd.randint(0, 30)):
        t = START + rnd.randint(0, span) * MIN
        queue = rnd.choice(["q1", "q2"])
        emit(t, "call", "acme", call_id=f"C{i}", queue=queue, type="offered")
        t += rnd.randint(1, 60) * 1_000_000
        emit(t, "call", "acme", call_id=f"C{i}", queue=queue, type=rnd.choice(["answered", "abandoned"]))
        extra = {"wrapup_seconds": rnd.choice([0, 0.5, 30.25])} if rnd.random() < 0.5 else {}
        emit(t + rnd.randint(10, 600) * 1_000_000, "call", "acme", call_id=f"C{i}", queue=queue, type="ended",
             **extra)
    t = START
    while t < START + span * MIN:
        emit(t, "probe", "acme", service=rnd.choice(["portal", "portal", "other"]),
             status="up" if rnd.random() < 0.9 else "down")
        t += rnd.choice([30, 60, 60, 240, 3600]) * MIN // 60 * probe_gap
    for _ in range(rnd.randint(0, 15)):
        emit(START + rnd.randint(0, span) * MIN, "survey", "acme", score=rnd.randint(1, 5))
    for _ in range(rnd.randint(0, 5)):
        items = rnd.randint(1, 50)
        emit(START + rnd.randint(0, span) * MIN, "audit", "acme", items=items, errors=rnd.randint(0, items))
    events.sort(key=lambda x: x[0])
    delay = rnd.choice([0, 20, 50, 120])  # minutes: beyond a client's lateness some arrive late
    keyed = [(t + rnd.randint(0, delay) * MIN, i, d) for i, (t, d) in enumerate(events)]
    out = [d for _, _, d in sorted(keyed, key=lambda x: (x[0], x[1]))]
    for d in rnd.sample(out, min(rnd.randint(0, 8), len(out))):  # resent
        out.insert(rnd.randint(out.index(d), len(out)), dict(d))
    for d in rnd.sample(out, min(rnd.randint(0, 3), len(out))):  # an id reused for another event
        out.insert(rnd.randint(0, len(out)), {**rnd.choice(out), "event_id": d["event_id"]})
    lines = [orjson.dumps(d) + b"\n" for d in out]
    for junk in rnd.sample([b"\n", b"  \n", b"{not json\n", b'{"kind": "ticket"}\n', b"[1]\n",
                            b'{"event_id": "x", "kind": "survey", "client": "nobody", "ts": "2026-11-02T10:00:00Z",'
                            b' "score": 3}\n',
                            b'{"event_id": "y\\u0041", "kind": "survey", "client": "acme", '
                            b'"ts": "2026-10-30T08:00:00+01:00", "score": 3}\n'], rnd.randint(0, 4)):
        lines.insert(rnd.randint(0, len(lines)), junk)
    return lines


def replay(lines: list[bytes], at_us: int | None, compiled: bool):
    old = compiled_replay.IN_USE
    compiled_replay.IN_USE = compiled
    try:
        result = replay_lines(io.BytesIO(b"".join(lines)), CONTRACT, at_us)
    finally:
        compiled_replay.IN_USE = old
    return result.pipeline(), [r.as_dict() for r in result.records]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), days=st.integers(1, 12), compact_every=st.sampled_from([7, 50, 400, 50_000]),
       evict_every=st.sampled_from([3, 20, 2_000]), at=st.sampled_from([None, "before", "after"]))
def test_the_compiled_loop_gives_the_reference_report(seed, days, compact_every, evict_every, at, monkeypatch):
    monkeypatch.setattr(engine_module, "COMPACT_EVERY", compact_every)
    monkeypatch.setattr(engine_module, "EVICT_CALLS_EVERY", evict_every)
    lines = stream(seed, days)
    at_us = {None: None, "before": START + days * 720 * MIN, "after": START + (days + 3) * 1440 * MIN}[at]
    assert replay(lines, at_us, compiled=True) == replay(lines, at_us, compiled=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), days=st.integers(31, 50))
def test_final_tickets_forgotten_after_their_retention_agree(seed, days):
    """Over a month: final tickets leave memory and, 30 days on, are forgotten (`FinalTickets.forget_before`)."""
    old = engine_module.COMPACT_EVERY
    engine_module.COMPACT_EVERY = 20
    try:
        lines = stream(seed, days, probe_gap=120)
        assert replay(lines, None, compiled=True) == replay(lines, None, compiled=False)
    finally:
        engine_module.COMPACT_EVERY = old


def test_the_streams_exercise_what_they_claim():
    """Late, duplicate, expired, orphan, rebuilt, malformed and unknown-client lines all occur in the streams."""
    seen: dict[str, int] = {}
    for seed in range(30):
        pipeline, _ = replay(stream(seed, 10), None, compiled=False)
        for reason, n in pipeline["rejected"].items():
            seen[reason] = seen.get(reason, 0) + n
        seen["duplicates"] = seen.get("duplicates", 0) + pipeline["duplicates"]
    assert {"late", "expired", "orphan", "malformed", "unknown_client", "invalid", "duplicates"} <= set(seen), seen


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), days=st.integers(3, 12))
def test_the_monthly_review_is_the_reference_one(seed, days):
    """`slamon report` (a `ReviewEngine`: tallies per queue and channel, breach priorities and clock facts, the
    backlog of unresolved tickets) renders the same HTML and CSV from the compiled loop."""
    from monitor.review.figures import review_at
    from monitor.review.render import render_csv, render_html
    from slamon.jobs import review

    lines = stream(seed, days)
    at = review_at(CONTRACT, "2026-11", None, START + days * 1440 * MIN)
    old = compiled_replay.IN_USE
    outputs = []
    try:
        for compiled in (True, False):
            compiled_replay.IN_USE = compiled
            result, figures = review(lines, CONTRACT, at, "2026-11", None, trend=2, jobs=1)
            outputs.append((result.pipeline(), [r.as_dict() for r in result.records], render_html(figures),
                            render_csv(figures)))
    finally:
        compiled_replay.IN_USE = old
    assert outputs[0] == outputs[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), advance_s=st.integers(0, 3 * 86_400))
def test_fuzzed_valid_events_give_the_reference_report(data, advance_s):
    """The fuzz suite's valid events (tests/property/test_fuzz_decoder.py: any ids, unicode written as escapes, which
    the compiled decoder leaves to Python, priorities and statuses with and without a target, the value ranges' ends)
    within a few days, on its contracts: the same report and pipeline counts."""
    base = to_us(__import__("datetime").datetime.fromisoformat("2026-03-27T22:00:00+00:00"))  # a DST change
    events = data.draw(st.lists(VALID, min_size=1, max_size=40))
    offsets = data.draw(st.lists(st.integers(0, 4 * 86_400), min_size=len(events), max_size=len(events)))
    lines = [to_json({**e, "ts": format_us(base + s * 1_000_000)}).encode() + b"\n"
             for e, s in zip(events, offsets, strict=True)]
    at = base + max(offsets) * 1_000_000 + advance_s * 1_000_000
    outputs = []
    old = compiled_replay.IN_USE
    try:
        for compiled in (True, False):
            compiled_replay.IN_USE = compiled
            result = replay_lines(lines, FUZZ_CONTRACTS, at)
            outputs.append((result.pipeline(), [r.as_dict() for r in result.records]))
    finally:
        compiled_replay.IN_USE = old
    assert outputs[0] == outputs[1]
