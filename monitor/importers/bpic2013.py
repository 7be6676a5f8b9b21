"""BPI Challenge 2013 (Volvo IT incident log, IBM CSV `VINST-new.csv`) -> slamon ticket events.

The log has one row per status change of a service request (SR): 65,533 rows, 7,554 SRs, 2010-03-31 to
2012-05-23. Rows of an SR are contiguous and in time order; every `Change Date+Time` carries a fixed
`+01:00` offset (the IBM export normalised the instants: SR 1-364285768 starts at 16:59:42 CEST in the
original XES and at 15:59:42+01:00 here), so the strings are copied verbatim and the monitor derives
Europe/Stockholm local time from the instant.

Mapping (one SR = one ticket, `ticket_id` = `SR Number`):

* First row of an SR -> `created` (at that row's time). `priority` from `SR Latest Impact`: Major->P1,
  High->P2, Medium->P3, Low->P4 (Volvo's own impact scale, most severe first). `queue` = the support line
  of that row (`ST Level`: L1, L2 or L3). The support team (`Involved ST`, 649 values) would be an
  unbounded label set and SRs move between teams all the time; the line is bounded and is what Volvo's
  process distinguishes ("push to front": L1 should solve most). No `channel`: the log has no such column
  and inventing one would mislead a contract that filters on channels.
* Every row -> a `status` event whose status is the slug of `Sub Status` ("In Progress" -> `in_progress`,
  "Awaiting Assignment" -> `awaiting_assignment`, "Wait - User" -> `wait_user`, "In Call" -> `in_call`,
  ...). The five Wait sub-statuses (`wait`, `wait_user`, `wait_implementation`, `wait_vendor`,
  `wait_customer`) are the pause statuses of `examples/bpic2013-contracts.yaml`: the SR is waiting on
  somebody other than the support team.
* The first "Accepted - In Progress" row of an SR -> also an `agent_reply`: it is the moment an agent
  takes ownership and starts working on it, the only provider action the log records (no e-mails or
  calls). An SR whose first row is already In Progress (84 %) was registered by a service-desk agent
  with the user, so its first response is immediate; SRs that start "Queued - Awaiting Assignment" wait
  until someone accepts them. Only the first time: later In Progress rows are the work continuing. If
  the SR was resolved or closed before anyone accepted it, no reply is emitted (the stop already decided
  the first response, spec 3 "Stops").
* "Completed - Resolved" and "Completed - In Call" (solved during the user's call) -> `resolved`;
  "Completed - Closed" (the administrative close, mostly by the Siebel system ~8 days later) and
  "Completed - Cancelled" -> `closed`. A completion row that finds the ticket already stopped (e.g.
  Resolved after Closed, or a repeated Closed) only emits its `status`.
* A row with status Accepted or Queued after the ticket was resolved/closed -> `reopened`, then its
  `status` (580 reopens in the full log). "Unmatched" rows only emit their `status`.
* A change of `SR Latest Impact` inside an SR -> a `priority` event. (The column holds the *latest*
  impact, so the real log has none; the mapping is there for exports that keep the history.)

Events of one row share its `ts` and are emitted in this order: created/reopened, priority, status,
agent_reply/resolved/closed. `event_id` = f"{sr}-{row}-{type}" with `row` the 0-based data row of the
file, unique and stable for a given file. The output is sorted by instant (stable: file order on ties).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from monitor.events import to_us

PRIORITY_BY_IMPACT = {"Major": "P1", "High": "P2", "Medium": "P3", "Low": "P4"}
PAUSE_STATUSES = ("wait", "wait_user", "wait_implementation", "wait_vendor", "wait_customer")
OPEN_STATUSES = ("Accepted", "Queued")
RESOLVING = {("Completed", "Resolved"), ("Completed", "In Call")}
CLOSING = {("Completed", "Closed"), ("Completed", "Cancelled")}
REQUIRED_COLUMNS = ("SR Number", "Change Date+Time", "Status", "Sub Status", "ST Level", "SR Latest Impact")

_OPEN, _RESOLVED, _CLOSED = "open", "resolved", "closed"
_NON_WORD = re.compile(r"[^a-z0-9]+")


def slug(sub_status: str) -> str:
    """'Wait - User' -> 'wait_user', 'In Progress' -> 'in_progress'."""
    return _NON_WORD.sub("_", sub_status.strip().lower()).strip("_") or "unknown"


def convert(csv_path: str | Path, client: str = "volvo-it") -> Iterator[dict]:
    """Yield spec ticket events for every row of the VINST CSV, sorted by event time (stable)."""
    keyed: list[tuple[int, int, dict]] = []
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{csv_path}: not a VINST CSV, missing columns {missing}")
        state: _Case | None = None
        for row_no, row in enumerate(reader):
            sr = row["SR Number"].strip()
            if state is None or state.sr != sr:
                state = _Case(sr)
            for event in state.events(row, row_no, client):
                keyed.append((event.pop("_us"), len(keyed), event))
    keyed.sort(key=_sort_key)
    for _, _, event in keyed:
        yield event


def _sort_key(item: tuple[int, int, dict]) -> tuple[int, int]:
    return item[0], item[1]


class _Case:
    """Lifecycle state of one SR while its rows are read (rows of an SR are contiguous)."""

    __slots__ = ("priority", "replied", "sr", "state")

    def __init__(self, sr: str):
        self.sr = sr
        self.priority: str | None = None
        self.state = _OPEN
        self.replied = False

    def events(self, row: dict, row_no: int, client: str) -> list[dict]:
        ts = row["Change Date+Time"].strip()
        try:
            us = to_us(datetime.fromisoformat(ts))
        except (ValueError, TypeError):
            raise ValueError(f"row {row_no + 2}: bad 'Change Date+Time' {ts!r}") from None
        impact = row["SR Latest Impact"].strip()
        priority = PRIORITY_BY_IMPACT.get(impact)
        if priority is None:
            raise ValueError(f"row {row_no + 2}: unknown 'SR Latest Impact' {impact!r}")
        status, sub = row["Status"].strip(), row["Sub Status"].strip()
        base = {"kind": "ticket", "client": client, "ts": ts, "ticket_id": self.sr, "_us": us}
        prefix = f"{self.sr}-{row_no}-"
        out: list[dict] = []

        def emit(type_: str, **extra: str) -> None:
            out.append({"event_id": prefix + type_, **base, "type": type_, **extra})

        if self.priority is None:
            emit("created", priority=priority, queue=row["ST Level"].strip() or "unknown")
            self.priority = priority
        elif status in OPEN_STATUSES and self.state != _OPEN:
            emit("reopened")
            self.state = _OPEN
        if priority != self.priority:
            emit("priority", priority=priority)
            self.priority = priority
        emit("status", status=slug(sub))
        if (status, sub) == ("Accepted", "In Progress") and not self.replied and self.state == _OPEN:
            emit("agent_reply")
            self.replied = True
        elif (status, sub) in RESOLVING and self.state == _OPEN:
            emit("resolved")
            self.state, self.replied = _RESOLVED, True
        elif (status, sub) in CLOSING and self.state != _CLOSED:
            emit("closed")
            self.state, self.replied = _CLOSED, True
        return out
