"""A sorted multiset of 64-bit ints in chunks of machine ints: 8 bytes a value, insert and remove in
O(log n + CHUNK), "how many are <= x" in O(log n + n / CHUNK).

The open-clock index keeps every open clock's deadline and stage instants in these: a million open tickets
hold several million values, which as a Python list of int objects would cost ~40 bytes each (and a list
insert moves the whole list), and as one flat array would move megabytes per insert. (sortedcontainers'
SortedList has the chunking but holds int objects.)
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort

CHUNK = 1024  # a chunk is split in two above twice this


class SortedInts:
    __slots__ = ("_chunks", "_firsts", "_len")

    def __init__(self) -> None:
        self._chunks: list[array] = []  # each sorted and non-empty; chunk k's values <= chunk k+1's
        self._firsts: list[int] = []  # the first value of each chunk
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, value: int) -> None:
        chunks = self._chunks
        if not chunks:
            chunks.append(array("q", [value]))
            self._firsts.append(value)
            self._len = 1
            return
        k = max(0, bisect_right(self._firsts, value) - 1)
        chunk = chunks[k]
        insort(chunk, value)
        self._firsts[k] = chunk[0]
        self._len += 1
        if len(chunk) > 2 * CHUNK:
            half = chunk[CHUNK:]
            del chunk[CHUNK:]
            chunks.insert(k + 1, half)
            self._firsts.insert(k + 1, half[0])

    def update(self, values: list[int]) -> None:
        """Add many: into an empty one, sorted once and cut into chunks (a first scrape puts in every open clock)."""
        if self._chunks:
            for value in values:
                self.add(value)
            return
        values = sorted(values)
        self._chunks = [array("q", values[i:i + CHUNK]) for i in range(0, len(values), CHUNK)]
        self._firsts = [chunk[0] for chunk in self._chunks]
        self._len = len(values)

    def load_sorted(self, packed: bytes) -> None:
        """Into an empty one: values already sorted, as native 8-byte ints (the compiled index build's output);
        cut into chunks as `update` cuts them."""
        assert not self._chunks, "load_sorted fills an empty SortedInts"
        values = array("q")
        values.frombytes(packed)
        self._chunks = [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]
        self._firsts = [chunk[0] for chunk in self._chunks]
        self._len = len(values)

    def remove(self, value: int) -> bool:
        """Remove one occurrence; False (and nothing changed) when the value is not held."""
        firsts = self._firsts
        k = bisect_left(firsts, value)  # equal values may start a later chunk; the occurrence can be before it
        if k == len(firsts) or firsts[k] != value:
            k -= 1
        if k < 0:
            return False
        chunk = self._chunks[k]
        i = bisect_left(chunk, value)
        if i == len(chunk) or chunk[i] != value:
            return False
        del chunk[i]
        self._len -= 1
        if not chunk:
            del self._chunks[k]
            del firsts[k]
        else:
            firsts[k] = chunk[0]
        return True

    def count_le(self, value: int) -> int:
        """How many held values are <= `value`."""
        firsts = self._firsts
        k = bisect_right(firsts, value)  # chunks 0..k-1 start at or before `value`
        if k == 0:
            return 0
        chunks = self._chunks
        return sum(map(len, chunks[:k - 1])) + bisect_right(chunks[k - 1], value)

    def min(self) -> int | None:
        return self._firsts[0] if self._firsts else None

    def __iter__(self):
        for chunk in self._chunks:
            yield from chunk
