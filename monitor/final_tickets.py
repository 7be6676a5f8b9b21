"""The tickets that became final and left memory (spec "Final items"), remembered compactly by id.

A final ticket is dropped from the engine; an event that arrives for it later must be rejected as `expired`,
never applied as a new ticket. What is remembered is a 64-bit hash of (client, ticket id), 8 bytes per ticket in
sorted arrays, grouped by the UTC day (event time) the ticket was dropped, and only for `RETENTION_DAYS` days:

- 8 bytes instead of a Python string or int in a set (~60 bytes), so a month of a busy floor's tickets costs a
  few MB; a false match needs a 64-bit collision (about 1 in 10^12 for ten million remembered tickets);
- forgotten after `RETENTION_DAYS`: ticketing systems do not reopen tickets that old (README "Final items"),
  so memory stays flat. After that an event for the id is treated like one for an unknown ticket (held as an
  orphan; a `created` with a reused id starts a new ticket).

Today's group is a set (cheap inserts); older groups are sealed into sorted `array('q')`s and searched by
bisection (a lookup per `created` event: one set probe plus a bisection per retained day).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b

DAY_US = 86_400_000_000
RETENTION_DAYS = 30


def ticket_hash(client: str, ticket_id: str) -> int:
    """Stable across processes and versions (Python's own `hash` of a str is salted per process)."""
    digest = blake2b(f"{client}\x00{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class FinalTickets:
    def __init__(self) -> None:
        self.sealed: dict[int, array] = {}  # day -> sorted hashes
        self.open_day: int | None = None
        self.today: set[int] = set()
        self.dirty_days: set[int] = set()  # changed since the checkpoint writer last looked
        self.dropped_days: set[int] = set()  # forgotten since then (tombstones)

    @property
    def empty(self) -> bool:
        return not self.today and not self.sealed

    def __len__(self) -> int:
        return len(self.today) + sum(len(a) for a in self.sealed.values())

    def __contains__(self, h: int) -> bool:
        if h in self.today:
            return True
        for hashes in self.sealed.values():
            i = bisect_left(hashes, h)
            if i < len(hashes) and hashes[i] == h:
                return True
        return False

    def add(self, h: int, at_us: int) -> None:
        day = at_us // DAY_US
        if self.open_day is None or day > self.open_day:
            self._seal()
            self.open_day = day
        self.today.add(h)
        self.dirty_days.add(self.open_day)

    def _seal(self) -> None:
        if self.open_day is not None and self.today:
            merged = sorted(self.today.union(self.sealed.get(self.open_day, ())))
            self.sealed[self.open_day] = array("q", merged)
        self.today = set()

    def forget_before(self, now_us: int) -> int:
        """Drop the groups older than the retention; returns how many hashes were forgotten."""
        limit = now_us // DAY_US - RETENTION_DAYS
        old = [day for day in self.sealed if day < limit]
        count = 0
        for day in old:
            count += len(self.sealed.pop(day))
            self.dirty_days.discard(day)
            self.dropped_days.add(day)
        return count

    # --- checkpoint records ---------------------------------------------------------------------------

    def day_bytes(self, day: int) -> bytes:
        """One day's hashes as sorted little-endian int64s (the checkpoint record's payload)."""
        hashes = set(self.sealed.get(day, ()))
        if day == self.open_day:
            hashes |= self.today
        out = array("q", sorted(hashes))
        if out.itemsize != 8:  # pragma: no cover - every platform Python supports has an 8-byte long long
            raise RuntimeError("array('q') is not 64-bit here")
        return out.tobytes()

    def load_day(self, day: int, payload: bytes) -> None:
        if len(payload) % 8:
            raise ValueError(f"final-ticket record of day {day}: {len(payload)} bytes is not a multiple of 8")
        hashes = array("q")
        hashes.frombytes(payload)
        self.sealed[day] = array("q", sorted(set(hashes).union(self.sealed.get(day, ()))))

    def merge(self, other: FinalTickets) -> None:
        for day in {*other.sealed, *([other.open_day] if other.open_day is not None else [])}:
            self.load_day(day, other.day_bytes(day))
