"""Offline replay: JSON Lines in, the section-4 report out. The same Engine the workers run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor import compiled_replay
from monitor.contracts import Contracts
from monitor.engine import Engine
from monitor.events import ORPHAN, Rejection, decode_event, format_us
from monitor.report import Record, build_report


@dataclass
class ReplayResult:
    at_us: int
    records: list[Record]
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    after_at: int = 0  # events later than --at, not applied
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first line number and detail

    def pipeline(self) -> dict:
        return {
            "at": format_us(self.at_us), "lines": self.lines, "accepted": self.accepted,
            "duplicates": self.duplicates, "after_at": self.after_at,
            "rejected": dict(sorted(self.rejected.items())), "rejected_examples": self.examples,
        }


def replay_lines(lines: Iterable[bytes], contracts: Contracts, at_us: int | None = None,
                 engine: Engine | None = None) -> ReplayResult:
    """Feed every line to a fresh engine and report at `at_us` (default: the newest event time)."""
    tally = ReplayTally()
    if compiled_replay.usable(engine):
        engine = compiled_replay.replay_engine(lines, contracts, at_us, tally, engine)
    else:
        engine = engine or Engine(contracts)
        ingest_lines(enumerate(lines, 1), engine, at_us, tally)
    at = at_us if at_us is not None else max(engine.now_us, 0)
    return replay_result(engine, tally, at, build_report(engine, at))


@dataclass
class ReplayTally:
    """What feeding lines to an engine counted besides the engine's own statistics; several merge into one
    (a replay split across processes, `slamon.jobs`)."""

    lines: int = 0  # the last line number seen
    after_at: int = 0
    rejected: Counter = field(default_factory=Counter)
    first: dict[str, tuple[int, str]] = field(default_factory=dict)  # reason -> (line number, detail)

    def merge(self, other: ReplayTally) -> None:
        self.lines = max(self.lines, other.lines)
        self.after_at += other.after_at
        self.rejected.update(other.rejected)
        for reason, example in other.first.items():
            self.first[reason] = min(example, self.first.get(reason, example))

    def reject(self, line: int, r: Rejection) -> None:
        self.rejected[r.reason] += 1
        self.first.setdefault(r.reason, (line, r.detail))


def ingest_lines(numbered: Iterable[tuple[int, bytes]], engine: Engine, at_us: int | None,
                 tally: ReplayTally) -> None:
    """Decode and apply (line number, line) pairs; events after `at_us` are counted, not applied."""
    clients = engine.contracts.clients
    for number, line in numbered:
        tally.lines = number
        if not line.strip():
            continue
        event = decode_event(line, clients)
        if isinstance(event, Rejection):
            tally.reject(number, event)
            continue
        if at_us is not None and event.ts_us > at_us:
            tally.after_at += 1
            continue
        problem = engine.ingest(event)
        if problem is not None:
            tally.reject(number, problem)


def replay_result(engine: Engine, tally: ReplayTally, at: int, records: list[Record]) -> ReplayResult:
    rejected = Counter(tally.rejected)
    orphans = engine.orphan_events()
    if orphans:
        rejected[ORPHAN] += orphans
    stats = engine.stats
    examples = {reason: f"line {line}: {detail}"  # in line order, however many engines counted them
                for reason, (line, detail) in sorted(tally.first.items(), key=lambda kv: kv[1])}
    return ReplayResult(
        at_us=at, records=records, lines=tally.lines, accepted=sum(stats.events.values()),
        duplicates=stats.duplicates, after_at=tally.after_at, rejected=rejected, examples=examples,
    )
