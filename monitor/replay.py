"""Offline replay: JSON Lines in, the section-4 report out. The same Engine the workers run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    engine = engine or Engine(contracts)
    clients = contracts.clients
    rejected: Counter = Counter()
    examples: dict[str, str] = {}
    count = after = 0
    for count, line in enumerate(lines, 1):
        if not line.strip():
            continue
        event = decode_event(line, clients)
        if isinstance(event, Rejection):
            _reject(rejected, examples, count, event)
            continue
        if at_us is not None and event.ts_us > at_us:
            after += 1
            continue
        problem = engine.ingest(event)
        if problem is not None:
            _reject(rejected, examples, count, problem)
    at = at_us if at_us is not None else max(engine.now_us, 0)
    records = build_report(engine, at)
    orphans = engine.orphan_events()
    if orphans:
        rejected[ORPHAN] += orphans
    stats = engine.stats
    return ReplayResult(
        at_us=at, records=records, lines=count, accepted=sum(stats.events.values()),
        duplicates=stats.duplicates, after_at=after, rejected=rejected, examples=examples,
    )


def _reject(counter: Counter, examples: dict[str, str], line: int, r: Rejection) -> None:
    counter[r.reason] += 1
    examples.setdefault(r.reason, f"line {line}: {r.detail}")
