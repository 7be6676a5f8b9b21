"""Fault suite: real broker, real workers (`python -m streams.app` subprocesses), a fault injected while a stream
of generated events (about 7.8k, four clients, four partitions) is flowing; afterwards the workers' /metrics
must equal the offline replay of exactly the events the broker accepted: nothing lost, nothing applied twice.

1. kill -9 of the worker three times in one run (restart after each);
2. a broker restart in the middle of the stream (a private broker);
3. rebalance under load: worker A, then B joins, then A is stopped (SIGTERM), while the producer keeps sending;
4. a full disk where the worker runs (tmpfs; needs root): worker state lives in the snapshots topic, so
   checkpoints and commits go on;
5. a poison message (a 1 MB event: its dead letter is larger than the broker takes): dead-lettered truncated
   with its reason, the worker goes on;
6. clock skew between producers (wall clock): ahead within `max_future_seconds` is accepted, beyond it is
   dead-lettered as `future` and counted;
7. kill -9 while a checkpoint's transaction is half-written (`SLAMON_FAULT_MID_CHECKPOINT_PAUSE`);
8. kill -9 during the catch-up of a 60k-event backlog: SLA-event duplicates at most one checkpoint interval's
   worth;
9. takeover after SIGTERM (< 5 s) and after kill -9 (< 15 s) with two workers and default settings.

Each test prints a `FAULT {...}` line (events sent, accepted, dead-lettered, seconds to recover) for
bench/RESULTS.md (`pytest -rP` shows it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from monitor.events import format_us, to_us
from monitor.replay import replay_lines
from streams.producer import make_producer, produce
from streams.topics import ensure_topics
from tests.support.pipeline import (
    PARTITIONS,
    Pipeline,
    assert_equals_replay,
    build_stream,
    merged,
    read_topic,
    restored_offsets,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def pipeline_factory(kafka_broker, tmp_path):
    made: list[Pipeline] = []

    def make(bootstrap: str | None = None, **kwargs) -> Pipeline:
        p = Pipeline(bootstrap or kafka_broker.bootstrap, tmp_path / f"p{len(made)}", **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


class Sender(threading.Thread):
    """Produces `lines` at a steady rate in the background (a producer that keeps sending during a fault)."""

    def __init__(self, p: Pipeline, lines: list[bytes], seconds: float, producer=None) -> None:
        super().__init__(daemon=True)
        self.p, self.lines, self.rate, self.producer = p, lines, len(lines) / seconds, producer
        self.result = None

    def run(self) -> None:
        self.result = produce(self.p.settings, self.lines, rate=self.rate, producer=self.producer)
        self.p.count += self.result.sent

    def finish(self, *, strict: bool = True) -> None:
        self.join(120)
        assert self.result is not None, "the sender did not finish"
        if strict:
            assert self.result.failed == 0, self.result.errors


def report(fault: str, m: dict, replay, **figures) -> None:
    """One line of figures per fault (for bench/RESULTS.md); lost and duplicated are 0 by the assertions."""
    dead = sum(v for (n, _), v in m.items() if n == "slamon_events_rejected_total")
    received = sum(v for (n, _), v in m.items() if n == "slamon_events_received_total")
    print("FAULT " + orjson.dumps({
        "fault": fault, "received": int(received), "accepted": replay.accepted, "dead_lettered": int(dead),
        "duplicates_deduped": replay.duplicates, "lost": 0, "applied_twice": 0,
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()},
    }).decode())


def topic_lines(p: Pipeline) -> list[bytes]:
    """Every record of the events topic, partition by partition: exactly what the broker accepted (each
    client's events keep their order, which is all the per-partition engines depend on)."""
    records = read_topic(p.settings, p.settings.topics.events, p.count, exact=False)
    by_partition = defaultdict(list)
    for r in records:
        by_partition[r.partition].append((r.offset, r.value))
    return [value for part in sorted(by_partition) for _, value in sorted(by_partition[part])]


# --- 1. kill -9 three times --------------------------------------------------------------------------------


def test_kill9_three_times_during_one_run_equals_replay(pipeline_factory):
    p = pipeline_factory()
    lines, end, rejects = build_stream(p.contracts)
    w = p.worker("w0").start()
    p.wait_assigned([w])
    parts = [lines[i * len(lines) // 4:(i + 1) * len(lines) // 4] for i in range(4)]
    recover = []
    for kill in range(1, 4):
        sender = Sender(p, parts[kill - 1], seconds=4)
        sender.start()
        time.sleep(2)  # the worker is applying while the producer sends: kill it there
        applied = p.applied_offsets([w])
        assert sender.is_alive(), "the kill must happen while events are still arriving"
        w.kill9()
        sender.finish()
        committed = p.committed_offsets()
        w = p.worker(f"w{kill}").start()
        recover.append(p.wait_reached([w], applied, timeout=150))
        restored = restored_offsets(w)
        # the invariant that makes a crash safe: nothing committed past what a stored snapshot reflects
        for q, offset in committed.items():
            assert offset <= restored.get(q, -1) + 1, (kill, q, offset, restored)
    Sender(p, parts[3], seconds=2).run()
    (m,) = p.wait_caught_up([w], timeout=150)
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    report("kill -9 x3", m, replay, sent=len(lines), recover_seconds=max(recover),
           recover_each=[round(r, 1) for r in recover])


# --- 2. broker restart -------------------------------------------------------------------------------------


def test_broker_restart_mid_stream_equals_replay(kafka_broker_factory, pipeline_factory):
    # fixture order: the workers are stopped before the broker (they checkpoint on the way out)
    broker = kafka_broker_factory()
    p = pipeline_factory(bootstrap=broker.bootstrap)
    lines, end, _ = build_stream(p.contracts)
    w = p.worker("w").start()
    p.wait_assigned([w])
    # a producer that rides out the restart (retries for about a minute): what it could not deliver is not
    # in the topic, and the comparison below is with exactly what the topic holds
    producer = make_producer(p.settings, retries=300, retry_backoff_ms=200, request_timeout_ms=10_000)
    sender = Sender(p, lines, seconds=10, producer=producer)
    sender.start()
    time.sleep(3)
    assert sender.is_alive()
    down = time.monotonic()
    broker.restart()
    back = time.monotonic()
    sender.finish(strict=False)
    producer.close()
    accepted = topic_lines(p)
    p.count = len(accepted)
    (m,) = p.wait_caught_up([w], timeout=150)
    caught_up = time.monotonic()
    expected = {r: v for r, v in replay_lines(accepted, p.contracts, end).rejected.items() if v and r != "orphan"}
    replay = assert_equals_replay(merged([m]), accepted, p.contracts, end, expected)
    assert w.alive(), "the worker survived the broker restart"
    report("broker restart", m, replay, sent=len(lines), producer_failed=sender.result.failed,
           broker_down_seconds=back - down, recover_seconds=caught_up - back)


# --- 3. rebalance under load ---------------------------------------------------------------------------------


def test_worker_added_then_removed_under_load_equals_replay(pipeline_factory):
    p = pipeline_factory()
    lines, end, rejects = build_stream(p.contracts)
    a = p.worker("a").start()
    p.wait_assigned([a])
    half = len(lines) // 2
    joining = Sender(p, lines[:half], seconds=10)
    joining.start()
    time.sleep(2)
    assert joining.is_alive(), "B must join while events are still arriving"
    b = p.worker("b").start()
    t0 = time.monotonic()
    p.wait_assigned([a, b], timeout=120)
    joined = time.monotonic() - t0
    joining.finish()
    leaving = Sender(p, lines[half:], seconds=8)
    leaving.start()
    time.sleep(1.5)
    applied = p.applied_offsets([a, b])
    assert leaving.is_alive(), "A must leave while events are still arriving"
    t1 = time.monotonic()
    a.stop()  # SIGTERM: final checkpoint, partitions handed to B
    p.wait_reached([b], applied, timeout=150)
    took_over = time.monotonic() - t1  # A's final checkpoint, the rebalance, B's restore
    leaving.finish()
    (m,) = p.wait_caught_up([b], timeout=150)
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    assert sum(v for (n, _), v in m.items() if n == "slamon_input_gaps_total") == 0
    assert len(restored_offsets(b)) == PARTITIONS, "B restored every partition from a snapshot"
    report("rebalance under load", m, replay, sent=len(lines), join_seconds=joined,
           recover_seconds=took_over, leave_to_caught_up=time.monotonic() - t1)


# --- 4. full disk ------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path):
    """A 16 MB tmpfs (needs root: CAP_SYS_ADMIN); unmounted afterwards."""
    mnt = tmp_path / "tinyfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk test (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):  # ENOSPC
            while os.write(fd, bytes(65536)):
                pass
    finally:
        os.close(fd)
    return filler


def unconfirmed(m: dict) -> float:
    return sum(v for (n, _), v in m.items() if n == "slamon_outbox_unconfirmed")


def checkpoint_failures(m: dict) -> float:
    return sum(v for (n, _), v in m.items() if n == "slamon_checkpoint_failures_total")


def test_full_disk_where_the_worker_runs_does_not_stop_checkpoints(pipeline_factory, tiny_fs):
    """Worker state lives in the snapshots topic (transactions, streams/checkpoint.py): a full local disk (its
    data dir on a filled tmpfs) must not stop checkpoints or commits."""
    p = pipeline_factory()
    lines, end, rejects = build_stream(p.contracts)
    filler = fill(tiny_fs)
    w = p.worker("w", SLAMON_DATA_DIR=str(tiny_fs / "data")).start()
    p.wait_assigned([w])
    third = len(lines) // 3
    Sender(p, lines[:2 * third], seconds=3).run()
    p.wait_caught_up([w])
    wait_committed(p, p.end_offsets())  # checkpoints stored, commits follow, disk full all along
    assert checkpoint_failures(w.metrics()) == 0 and w.alive()
    filler.unlink()
    p.produce(lines[2 * third:])
    (m,) = p.wait_caught_up([w])
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    report("full disk", m, replay, sent=len(lines), checkpoint_failures=int(checkpoint_failures(m)))


def test_kill9_mid_checkpoint_equals_replay(pipeline_factory):
    """kill -9 while a checkpoint's transaction is half-written: the next owner's producer aborts it, the
    restore reads the checkpoint before, re-reads the input after it and ends equal to the replay."""
    p = pipeline_factory()
    lines, end, rejects = build_stream(p.contracts)
    half = len(lines) // 2
    w = p.worker("w0", SLAMON_FAULT_MID_CHECKPOINT_PAUSE="30").start()
    p.wait_assigned([w])
    p.produce(lines[:half // 2])
    p.wait_caught_up([w])
    wait_committed(p, p.end_offsets())  # a first checkpoint is stored; the next one pauses halfway
    p.produce(lines[half // 2:half])
    deadline = time.monotonic() + 60
    while "checkpoint half-written" not in w.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, w.tail()
        time.sleep(0.2)
    applied = p.applied_offsets([w])
    committed = p.committed_offsets()
    w.kill9()
    w = p.worker("w1").start()
    recover = p.wait_reached([w], applied, timeout=150)
    restored = restored_offsets(w)
    for q, offset in committed.items():  # nothing committed past what a stored checkpoint reflects
        assert offset <= restored.get(q, -1) + 1, (q, offset, restored)
    p.produce(lines[half:])
    (m,) = p.wait_caught_up([w], timeout=150)
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    report("kill -9 mid-checkpoint", m, replay, sent=len(lines), recover_seconds=recover)


def wait_committed(p: Pipeline, ends: dict[int, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.committed_offsets() == ends:
            return
        time.sleep(0.5)
    raise AssertionError(f"committed {p.committed_offsets()} never reached {ends}")


# --- 5. poison message -------------------------------------------------------------------------------------

# The largest event the producer sends (max_request_size 1 MiB less the record batch overhead); its dead letter
# adds about 120 bytes of headers and passes the broker's limit (message.max.bytes, 1 MiB + 12).
POISON_BYTES = 1_048_576 - 100


def test_poison_message_is_dead_lettered_and_the_worker_goes_on(pipeline_factory):
    """A 1 MB event fits the events topic but its dead letter (the original bytes plus reason headers) does not
    fit the broker's message limit: the worker must dead-letter it anyway (truncated, with its reason and the
    original size) and go on, not resend it forever."""
    p = pipeline_factory()
    lines, end, rejects = build_stream(p.contracts)
    head = orjson.dumps({"event_id": "poison-1", "kind": "survey", "client": "acme", "ts": format_us(end),
                         "score": 5, "note": ""})
    poison = head[:-2] + b"p" * (POISON_BYTES - len(head)) + b'"}'
    middle = len(lines) // 2
    lines = [*lines[:middle], poison, *lines[middle:]]
    rejects["oversized"] += 1
    w = p.worker("w").start()
    p.wait_assigned([w])
    p.produce(lines)
    (m,) = p.wait_caught_up([w])
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    letters = read_topic(p.settings, p.settings.topics.deadletter, sum(rejects.values()), timeout=60)
    (letter,) = [r for r in letters if b"poison-1" in r.value]
    headers = dict(letter.headers)
    assert headers["reason"] == b"oversized"
    assert int(headers["original_bytes"]) == len(poison)
    assert poison.startswith(letter.value) and len(letter.value) < len(poison)
    deadline = time.monotonic() + 30
    while unconfirmed(m) and time.monotonic() < deadline:  # every output delivered: nothing resent forever
        time.sleep(0.5)
        m = w.metrics()
    assert unconfirmed(m) == 0, w.tail()
    report("poison message", m, replay, sent=len(lines))


# --- 6. clock skew between producers -------------------------------------------------------------------------

SKEW_CONTRACTS = """
allowed_lateness: 1h
clients:
""" + "".join(f"""
  {client}:
    timezone: UTC
    slas:
      - {{name: first-response, kind: first_response, time: calendar, target: {{P1: 30m}}, objective: 0.9}}
      - {{name: csat, kind: csat, target: 0.8}}
      - {{name: accuracy, kind: accuracy, target: 0.98}}
""" for client in ("acme", "hooli", "initech", "globex"))


def skewed_events(producer: str, skew_s: float, n: int, now_us: int) -> list[bytes]:
    """`n` events as a producer whose clock is `skew_s` ahead would stamp them over the next few seconds:
    tickets created and answered within the target, surveys, audits, for the four clients."""
    out = []
    clients = ("acme", "hooli", "initech", "globex")
    for i in range(n):
        client = clients[(i // 4) % 4]  # a ticket's created and reply have the same client
        ts = now_us + int(skew_s * 1e6) + i * 1000
        common = {"client": client, "ts": format_us(ts)}
        kind = i % 4
        if kind == 0:
            out.append({"event_id": f"{producer}-c{i}", "kind": "ticket", "type": "created",
                        "ticket_id": f"{producer}-T{i}", "priority": "P1", **common})
        elif kind == 1:
            out.append({"event_id": f"{producer}-r{i}", "kind": "ticket", "type": "agent_reply",
                        "ticket_id": f"{producer}-T{i - 1}", **common})
        elif kind == 2:
            out.append({"event_id": f"{producer}-s{i}", "kind": "survey", "score": 1 + i % 5, **common})
        else:
            out.append({"event_id": f"{producer}-a{i}", "kind": "audit", "items": 100, "errors": i % 4, **common})
    return [orjson.dumps(e) for e in out]


def test_clock_skew_between_producers(pipeline_factory):
    p = pipeline_factory(contracts_text=SKEW_CONTRACTS, clock="wall", SLAMON_MAX_FUTURE_SECONDS="300")
    w = p.worker("w").start()
    p.wait_assigned([w])
    now = time.time_ns() // 1000
    on_time = skewed_events("ontime", 0, 1200, now)
    ahead_ok = skewed_events("ahead120", 120, 1200, now)  # within tolerance
    ahead_bad = skewed_events("ahead900", 900, 600, now)  # beyond tolerance: rejected as `future`
    duplicates = on_time[:40:4]  # an at-least-once producer sending some records twice
    senders = [Sender(p, batch, seconds=4) for batch in (on_time + duplicates, ahead_ok, ahead_bad)]
    for s in senders:
        s.start()
    for s in senders:
        s.finish()
    (m,) = p.wait_caught_up([w])
    accepted = on_time + duplicates + ahead_ok
    at_us = max(to_us(datetime.fromisoformat(orjson.loads(line)["ts"])) for line in accepted)
    replay = assert_equals_replay(merged([m]), accepted, p.contracts, at_us, {},
                                  worker_rejects={"future": len(ahead_bad)})
    letters = read_topic(p.settings, p.settings.topics.deadletter, len(ahead_bad), timeout=60)
    assert {dict(r.headers)["reason"] for r in letters} == {b"future"}
    assert all(b"ahead of the worker clock" in dict(r.headers)["detail"] for r in letters)
    report("clock skew", m, replay, sent=len(accepted) + len(ahead_bad), future=len(ahead_bad))


# --- 8. kill -9 during catch-up: SLA-event duplicates --------------------------------------------------------

CATCH_UP_CHECKPOINT = 0.5  # seconds: several checkpoints within the catch-up (a worker now takes ~3 s for it)


def big_stream(contracts) -> tuple[list[bytes], int]:
    """About 60k events: generated traffic at eight times the rates of `build_stream` (1 % sent twice), no
    junk."""
    from monitor.simulation.generator import GeneratorConfig, generate
    from tests.support.pipeline import HOURS, START, _us

    start = _us(START)
    cfg = GeneratorConfig(start_us=start, duration_us=HOURS * 3_600_000_000, seed=5, tickets_per_hour=200,
                          calls_per_hour=720, duplicate_rate=0.01)
    lines = [orjson.dumps(e) for e in generate(contracts, cfg)]
    end = start + HOURS * 3_600_000_000
    for client in contracts.clients:  # every partition's event clock ends at the same instant
        lines.append(orjson.dumps({"event_id": f"close-{client}", "kind": "survey", "client": client,
                                   "ts": format_us(end), "score": 5}))
    return lines, end


def busiest_window(timestamps_ms: list[int], seconds: float) -> int:
    """The most records whose timestamps fall in any window of `seconds`."""
    ts, best, lo = sorted(timestamps_ms), 0, 0
    for hi, t in enumerate(ts):
        while t - ts[lo] >= seconds * 1000:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


ITEM_KINDS = {"first_response", "resolution", "service_level", "abandon_rate", "asa", "aht"}  # one item, one event


def assert_topic_reads_as_replay(records: list, replay) -> None:
    """The SLA-events topic read by its rule (decided = upsert, withdrawn = delete, in topic order, keyed by
    client, SLA and item) holds, per ticket and call SLA, as many decisions, good and bad, as the replay."""
    live: dict[tuple, str] = {}
    for r in records:
        d = orjson.loads(r.value)
        key = (d["client"], d["sla"], d["item"])
        if d["change"] == "decided":
            live[key] = d["outcome"]
        else:
            live.pop(key, None)
    folded = defaultdict(lambda: [0, 0, 0])
    for (client, sla, _), outcome in live.items():
        f = folded[(client, sla)]
        f[0] += 1
        f[1] += outcome == "good"
        f[2] += outcome == "bad"
    expected = defaultdict(lambda: [0, 0, 0])
    for rec in replay.records:
        if rec.kind in ITEM_KINDS:
            e = expected[(rec.client, rec.sla)]
            e[0] += rec.decided
            e[1] += rec.good or 0
            e[2] += rec.bad or 0
    assert expected and {k: v for k, v in folded.items() if k in expected} == dict(expected)


def test_kill9_during_catch_up_sla_event_duplicates_within_one_checkpoint_interval(pipeline_factory):
    """A worker killed while it catches up on a backlog: its replacement restores the last checkpoint and
    applies the events after it again. The SLA-events topic gets at most one checkpoint interval's worth of
    duplicates (what the broker already confirmed is not sent again), and the state equals the replay."""
    p = pipeline_factory(SLAMON_CHECKPOINT_INTERVAL=str(CATCH_UP_CHECKPOINT))
    lines, end = big_stream(p.contracts)
    ensure_topics(p.settings)  # before producing: the broker would auto-create the events topic with 1 partition
    p.produce(lines)
    w = p.worker("w0").start()
    deadline = time.monotonic() + 120
    while True:  # kill past a third of the backlog, once every partition with data has a stored checkpoint
        offsets = p.applied_offsets([w])
        applied = sum(max(0, o + 1) for o in offsets.values())
        if applied > len(lines) // 3:
            stored = [v for (n, _), v in w.metrics().items() if n == "slamon_checkpoint_offset" and v >= 0]
            if len(stored) >= sum(1 for o in offsets.values() if o >= 0):
                break  # (a crash before a partition's first checkpoint resends its outputs: documented elsewhere)
        assert time.monotonic() < deadline and w.alive(), w.tail()
        time.sleep(0.1)
    killed_ms = time.time() * 1000
    w.kill9()
    assert applied < len(lines), "the kill must happen during the catch-up"
    w = p.worker("w1").start()
    p.wait_assigned([w])
    (m,) = p.wait_caught_up([w], timeout=180)
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, {})
    emitted = int(sum(v for (n, _), v in m.items() if n == "slamon_sla_events_total"))
    deadline = time.monotonic() + 30
    while unconfirmed(m) and time.monotonic() < deadline:  # every output confirmed
        time.sleep(0.5)
        m = w.metrics()
    deadline = time.monotonic() + 60
    while True:  # the replacement may still be sending what it re-applied (seen once in CI: ~1.8k calls short)
        records = read_topic(p.settings, p.settings.topics.sla_events, emitted, exact=False, timeout=60)
        try:
            assert_topic_reads_as_replay(records, replay)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    duplicates = len(records) - emitted
    before = [r.timestamp for r in records if r.timestamp < killed_ms]
    per_interval = busiest_window(before, CATCH_UP_CHECKPOINT)
    assert duplicates >= 0
    assert duplicates <= per_interval, (duplicates, per_interval)
    report("kill -9 during catch-up", m, replay, sent=len(lines), killed_at_applied=applied,
           sla_events=emitted, sla_event_records=len(records), sla_event_duplicates=duplicates,
           sla_events_per_checkpoint_interval=per_interval,
           duplicates_per_interval=round(duplicates / per_interval, 2) if per_interval else None)


# --- 9. takeover after SIGTERM and after kill -9, default settings ----------------------------------------------

TERM_TAKEOVER_MAX = 5.0  # seconds (issue 13)
KILL_TAKEOVER_MAX = 15.0


def takeover(p: Pipeline, survivors: list, partitions: list[int], applied: dict[int, int], t0: float,
             timeout: float = 60) -> tuple[float, float]:
    """Seconds from t0 until the survivors own `partitions` (restored), and until they reflect `applied`."""
    owned = None
    while time.monotonic() - t0 < timeout:
        engines: set[int] = set()
        for w in survivors:
            engines.update(int(q) for q in (w.health() or {}).get("engines", []))
        now = time.monotonic() - t0
        if owned is None and set(partitions) <= engines:
            owned = now
        reached = p.applied_offsets(survivors)
        if owned is not None and all(reached.get(q, -1) >= applied.get(q, -1) for q in partitions):
            return owned, now
        time.sleep(0.1)
    raise AssertionError(f"no takeover of {partitions} in {timeout}s\n" + "\n---\n".join(w.tail() for w in survivors))


def test_takeover_after_sigterm_and_after_kill9_with_default_settings(pipeline_factory):
    """Two workers with the default session timeout, events flowing. A stops (SIGTERM): it leaves the group at
    once and B owns and has applied A's partitions within 5 s. A comes back; then B is killed (-9): A owns and has
    applied B's partitions within 15 s (the session timeout, 10 s, plus the rebalance and the restore). Nothing
    lost, nothing applied twice."""
    p = pipeline_factory(SLAMON_SESSION_TIMEOUT=None)  # the default
    lines, end, rejects = build_stream(p.contracts)
    a, b = p.worker("a").start(), p.worker("b").start()
    p.wait_assigned([a, b], timeout=120)
    assert a.health()["group"]["session_timeout"] == 10
    half = len(lines) // 2
    first = Sender(p, lines[:half], seconds=12)
    first.start()
    time.sleep(3)
    moved = [int(q) for q in a.health()["engines"]]
    applied = p.applied_offsets([a])
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    term_owned, term_takeover = takeover(p, [b], moved, applied, t0)
    a.stop()
    first.finish()
    a2 = p.worker("a2").start()
    p.wait_assigned([a2, b], timeout=120)
    second = Sender(p, lines[half:], seconds=12)
    second.start()
    time.sleep(3)
    moved = [int(q) for q in b.health()["engines"]]
    applied = p.applied_offsets([b])
    t0 = time.monotonic()
    b.kill9()
    kill_owned, kill_takeover = takeover(p, [a2], moved, applied, t0)
    second.finish()
    (m,) = p.wait_caught_up([a2], timeout=150)
    replay = assert_equals_replay(merged([m]), lines, p.contracts, end, rejects)
    report("takeover", m, replay, sent=len(lines), session_timeout=10,
           sigterm_owned_seconds=term_owned, sigterm_takeover_seconds=term_takeover,
           kill9_owned_seconds=kill_owned, kill9_takeover_seconds=kill_takeover)
    assert term_takeover < TERM_TAKEOVER_MAX, term_takeover
    assert kill_takeover < KILL_TAKEOVER_MAX, kill_takeover
