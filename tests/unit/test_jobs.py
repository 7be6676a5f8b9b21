"""`--jobs N` (slamon/jobs.py): a replay split across processes by item (the review: by client) gives the one-process
result. What holds items of one client together across jobs is tested in test_jobs_items.py."""

from __future__ import annotations

import random
import zlib

import orjson
import pytest

from monitor.contracts import load_contracts
from monitor.formats import to_csv, to_json, to_table
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate
from slamon.jobs import client_of, replay
from tests.builders import us

CONTRACTS = load_contracts("examples/contracts.yaml")


def _traffic(hours: float, seed: int, far: int = 300) -> list[bytes]:
    """Generated traffic with what a real file holds besides: disorder, repeats (up to `far` lines later),
    garbage, unknown clients."""
    rnd = random.Random(seed)
    config = GeneratorConfig(start_us=us("2026-11-02T00:00:00+00:00"), duration_us=int(hours * HOUR_US), seed=seed,
                             disorder_us=20 * 60_000_000, duplicate_rate=0.01)
    lines = [orjson.dumps(e) for e in generate(CONTRACTS, config)]
    for _ in range(len(lines) // 200):  # repeats
        i = rnd.randrange(len(lines))
        lines.insert(min(len(lines), i + rnd.choice([1, 50, far])), lines[i])
    for i in range(0, len(lines) - 30, 997):  # local disorder
        j = i + rnd.randrange(1, 30)
        lines[i], lines[j] = lines[j], lines[i]
    for junk in (b"", b"garbage", b'{"client": "nobody", "kind": "probe"}', b"[1, 2]", b"   "):
        lines.insert(rnd.randrange(len(lines)), junk)
    return lines


@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_give_the_one_process_report_byte_for_byte(jobs):
    lines = _traffic(hours=30, seed=5)
    one, many = replay(lines, CONTRACTS, jobs=1), replay(lines, CONTRACTS, jobs=jobs)
    assert one.accepted > 10_000 and one.duplicates > 0 and one.rejected
    assert to_json(many) == to_json(one) and to_csv(many) == to_csv(one) and to_table(many) == to_table(one)
    assert many.pipeline() == one.pipeline() and many.examples == one.examples
    # every client's tickets and calls were spread over every job (not one client per job)
    spread = {}
    for line in lines:
        event = orjson.loads(line) if line.strip().startswith(b"{") else None
        item = event and (event.get("ticket_id") or event.get("call_id"))
        if item:
            spread.setdefault((event["client"], event["kind"]), set()).add(zlib.crc32(item.encode()) % jobs)
    assert len(spread) >= 4 and all(jobs_seen == set(range(jobs)) for jobs_seen in spread.values())


def test_a_repeat_older_than_the_lateness_is_late_or_a_duplicate_but_never_counted():
    # Whether the engine still holds the id of an event older than the lateness horizon depends on when it last
    # compacted (README "Duplicates"), which differs per job: only that split may differ, never a figure.
    lines = _traffic(hours=30, seed=5, far=8000)
    one, many = replay(lines, CONTRACTS, jobs=1), replay(lines, CONTRACTS, jobs=2)
    assert [r.as_dict() for r in many.records] == [r.as_dict() for r in one.records]
    late = lambda r: r.duplicates + r.rejected["late"]  # noqa: E731
    assert late(many) == late(one) and many.accepted == one.accepted
    assert {k: v for k, v in many.rejected.items() if k != "late"} == {k: v for k, v in one.rejected.items()
                                                                       if k != "late"}


def test_jobs_with_a_report_instant():
    lines = _traffic(hours=8, seed=2)
    cut = us("2026-11-02T07:00:00+00:00")
    one, many = replay(lines, CONTRACTS, cut, jobs=1), replay(lines, CONTRACTS, cut, jobs=2)
    assert one.after_at > 0 and to_json(many) == to_json(one)


@pytest.mark.parametrize(("line", "client"), [
    (b'{"event_id":"e","client":"acme","kind":"probe"}', "acme"),
    (b'{"client" :  "acme" , "kind": "probe"}', "acme"),
    (b'{"kind": "client", "client": "acme"}', "acme"),  # the word twice: decoded in full
    (b'{"client": "ac\\"me"}', 'ac"me'),  # an escape: decoded in full
    (b'{"note": "client", "x": 1}', None),
    (b'{"client": 5}', None),
    (b"not json", None),
    (b"[1]", None),
])
def test_client_of(line, client):
    assert client_of(line) == client


@pytest.mark.parametrize("clients", [None, ["zenith-health", "acme-retail"]])
def test_the_review_on_jobs_renders_byte_for_byte_as_on_one(clients):
    """`slamon report --jobs N`: every job builds its clients' part of the review; the HTML and CSV equal one
    process's, including the partial-period marks, which take the earliest figure over all jobs."""
    from monitor.review.figures import review_at
    from monitor.review.render import render_csv, render_html
    from slamon.jobs import review

    lines = _traffic(hours=40, seed=3)
    at = review_at(CONTRACTS, "2026-11", clients, us("2026-11-03T16:00:00+00:00"))
    one_result, one = review(lines, CONTRACTS, at, "2026-11", clients, trend=2, jobs=1)
    many_result, many = review(lines, CONTRACTS, at, "2026-11", clients, trend=2, jobs=2)
    assert [c.client for c in many.clients] == (clients or list(CONTRACTS.clients))
    assert many.data_start_us == one.data_start_us and any(c.data_from_us for c in one.clients)
    assert render_html(many) == render_html(one) and render_csv(many) == render_csv(one)
    assert to_json(many_result) == to_json(one_result)
    html = render_html(one)  # the comparison covers the breach reasons and the open tickets each job builds
    assert "Why tickets breached" in html and "Open tickets · as of" in html


def test_a_review_whose_month_has_not_begun_fails_alike_on_jobs():
    from monitor.review.figures import ReviewError
    from slamon.jobs import review

    lines = _traffic(hours=4, seed=1)
    for jobs in (1, 2):
        with pytest.raises(ReviewError, match="before December 2026 starts"):
            review(lines, CONTRACTS, us("2026-11-02T04:00:00+00:00"), "2026-12", jobs=jobs)
