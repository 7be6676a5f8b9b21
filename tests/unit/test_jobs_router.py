"""The `--jobs` reader's compiled router (native/router) against its Python reference (`slamon.jobs.ItemRouter`):
on arbitrary lines (events of known and unknown clients, disorder, repeats, every form of event time, escapes,
repeated keys, documents that are not objects, broken JSON and UTF-8, blank lines) both place every line on the same
job, flag the same lines, cut the same chunks and end with the same newest event times."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import load_contracts
from slamon import jobs
from slamon.jobs import ItemRouter

CONTRACTS = load_contracts("examples/contracts.yaml")
CLIENTS = list(CONTRACTS.clients)
T0 = 1_793_574_000  # 2026-11-02T01:00:00Z, seconds

compiled_only = pytest.mark.skipif(jobs._router is None, reason="the compiled router is not built (no Rust at install)")


def _stamp(seconds: int, form: int) -> object:
    from datetime import UTC, datetime

    t = datetime.fromtimestamp(T0 + seconds, UTC)
    return [
        t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",  # the fast form
        t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        t.strftime("%Y-%m-%dT%H:%M:%S.%f+01:00"),
        t.strftime("%Y-%m-%dT%H:%M:%S.") + "123Z",
        "2026-02-30T10:04:05.123Z", "2026-11-02T10:04X05.123Z", "2026-11-02T10:04:60.000Z", "2026-11-02 10:04:05Z",
        "0000-01-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z", "２０２６-11-02T10:04:05.123Z", "",
        12345, None,
    ][form]


ids = st.text(alphabet=st.sampled_from('ab1"\\é\u2028\n'), min_size=0, max_size=4)


@st.composite
def event_lines(draw) -> bytes:
    kind = draw(st.sampled_from(["ticket", "call", "probe", "survey", "audit", "other", 7]))
    event: dict = {"event_id": draw(ids), "kind": kind,
                   "client": draw(st.sampled_from([*CLIENTS, "nobody", "", 3])),
                   "ts": _stamp(draw(st.integers(0, 4 * 3600)), draw(st.integers(0, 13)))}
    if draw(st.booleans()):
        event["ticket_id"] = draw(st.one_of(ids, st.integers(0, 9)))
    if draw(st.booleans()):
        event["call_id"] = draw(st.one_of(ids, st.none()))
    if draw(st.booleans()):
        event["extra"] = {"nested": [1, 2.5, {"x": None}], "flag": True}
    if draw(st.booleans()):
        del event["ts"]
    line = orjson.dumps(event)
    if draw(st.integers(0, 9)) == 0:  # a repeated key: the last one counts
        line = line[:-1] + b',"client":' + orjson.dumps(draw(st.sampled_from([*CLIENTS, "nobody"]))) + b"}"
    return line + draw(st.sampled_from([b"\n", b"", b" \r\n"]))


odd_lines = st.sampled_from([
    b"", b"\n", b"  \t\x0b\x0c\n", b"{", b"[]", b'"acme-retail"', b"null", b"12", b'{"client": "acme-retail"',
    b'{"client": "acme-retail", "kind": "ticket", "ticket_id": "T1", "ts": "2026-11-02T10:04:05.123Z"} x',
    b'{"client": "acme-retail", "kind": "ticket", "ticket_id": "T\xff", "ts": "2026-11-02T10:04:05.123Z"}',
    b'{"client": "acme-retail", "kind": "ticket", "ticket_id": "\\ud800", "ts": "2026-11-02T10:04:05.123Z"}',
    b'{"client": "acme-\\u0072etail", "kind": "\\u0074icket", "ticket_id": "T\\"1", "\\u0074s": '
    b'"2026-11-02T10:04:05.123Z"}',
    b'{"client": "acme-retail", "kind": "call", "call_id": "C1", "ts": "2026-11-02T11:00:00.000Z", "deep": '
    + b"[" * 200 + b"]" * 200 + b"}",
    b'{"client": "acme-retail", "kind": "call", "call_id": "C1", "ts": "2026-11-02T11:00:00.000Z", "n": 1e400}',
    b'{"client": "acme-retail", "kind": "call", "call_id": "C1", "ts": "2026-11-02T11:00:00.000Z", "n": '
    + b"9" * 40 + b"}",
])


def _routed(lines: list[bytes], n: int, at_us: int | None, lateness: dict[str, int], compiled: bool):
    owner = {name: i % n for i, name in enumerate(CLIENTS)}
    router = ItemRouter(n, owner, lateness, at_us, compiled=compiled)
    numbers, parts, flagged = [[] for _ in range(n)], [[] for _ in range(n)], [[] for _ in range(n)]
    chunks: list = []

    def chunk(end: int) -> None:
        chunks.append((end, [list(x) for x in numbers], [list(x) for x in parts], [list(x) for x in flagged]))
        for table in (numbers, parts, flagged):
            for part in table:
                part.clear()

    count = router.route(iter(lines), numbers, parts, flagged, chunk)
    chunk(count)
    return count, chunks, router.newest


@compiled_only
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(event_lines(), odd_lines), max_size=60), st.integers(1, 4),
       st.one_of(st.none(), st.integers(0, 4 * 3600)), st.integers(0, 3600), st.sampled_from([3, 7, 4096]))
def test_the_compiled_router_routes_as_the_reference(lines, n, at_s, lateness_s, chunk_lines):
    at_us = None if at_s is None else (T0 + at_s) * 1_000_000
    lateness = {name: lateness_s * 1_000_000 for name in CLIENTS}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jobs, "CHUNK", chunk_lines)
        reference = _routed(lines, n, at_us, lateness, compiled=False)
        compiled = _routed(lines, n, at_us, lateness, compiled=True)
    assert compiled == reference


@compiled_only
def test_the_bench_traffic_routes_as_the_reference():
    """A day of generated traffic with its disorder and repeats, and a short lateness so that lines are flagged."""
    from tests.unit.test_jobs import _traffic

    lines = _traffic(hours=24, seed=7)
    lateness = {name: 30_000_000 for name in CLIENTS}
    reference = _routed(lines, 2, None, lateness, compiled=False)
    assert reference == _routed(lines, 2, None, lateness, compiled=True)
    assert sum(len(f) for _, _, _, flags in reference[1] for f in flags) > 100  # the premise: lines are flagged
