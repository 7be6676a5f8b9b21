"""Every connector on its fixtures (tests/fixtures/ingest/<vendor>/): the mapped events equal expected.json, pass
the worker's decoder, and replay to the figures the fixtures were written for."""

from __future__ import annotations

import orjson
import pytest

from ingest.connectors.base import Context, Reject, timestamp
from monitor.events import Rejection, decode_event
from tests.ingest.helpers import cases, expected, map_case, vendors

ALL = [(v, p) for v in vendors() for p in cases(v)]


@pytest.mark.parametrize(("vendor", "path"), ALL, ids=[f"{v}/{p.name}" for v, p in ALL])
def test_fixture_maps_to_expected(vendor, path):
    result = map_case(vendor, path)
    want = expected(vendor)[path.name]
    if isinstance(want, dict):
        assert isinstance(result, Reject), result
        assert want["reject"] in result.reason
        return
    assert not isinstance(result, Reject), result.reason
    assert result == want
    for event in result:
        decoded = decode_event(orjson.dumps(event), {event["client"]})
        assert not isinstance(decoded, Rejection), (event, decoded)


@pytest.mark.parametrize("vendor", vendors())
def test_every_vendor_has_rejections_and_ignored_cases(vendor):
    results = expected(vendor)
    assert any(isinstance(v, dict) for v in results.values()), "a case that is rejected"
    assert len(set().union(*({e["event_id"] for e in v} for v in results.values() if isinstance(v, list)))) == \
        sum(len(v) for v in results.values() if isinstance(v, list)) - _duplicates(vendor), "event ids unique"


def _duplicates(vendor: str) -> int:
    """Cases that repeat an event on purpose (the same comment in two webhooks)."""
    return {"jira": 1, "alertmanager": 2}.get(vendor, 0)


def test_timestamps():
    assert timestamp("2026-03-02T09:00:00Z") == "2026-03-02T09:00:00Z"
    assert timestamp("2026-03-02T10:00:00.000+0100") == "2026-03-02T09:00:00Z"
    assert timestamp("2026-03-02 09:00:00") == "2026-03-02T09:00:00Z"
    assert timestamp(1772442000) == "2026-03-02T09:00:00Z"
    assert timestamp("1772442000123") == "2026-03-02T09:00:00.123000Z"
    assert timestamp(1772442000.5) == "2026-03-02T09:00:00.500000Z"
    assert timestamp("2026-03-02T09:00:00") == "2026-03-02T09:00:00Z"  # naive: UTC
    for bad in (None, True, "", "yesterday", 12, float("nan"), "1e400", [], {}):
        assert timestamp(bad) is None, bad


def test_event_ids_are_bounded():
    ctx = Context(client="acme", source="x" * 100)
    eid = ctx.event_id("y" * 100)
    assert len(eid) == 128 and eid != ctx.event_id("y" * 99 + "z")
