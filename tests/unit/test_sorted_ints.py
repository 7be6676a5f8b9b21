"""monitor/sorted_ints.py against a sorted Python list: adds, removes (held and not held), duplicates across
chunk boundaries, counts at and between held values."""

from __future__ import annotations

from bisect import bisect_right

from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.sorted_ints as sorted_ints
from monitor.sorted_ints import SortedInts

values = st.integers(-(1 << 62), 1 << 62) | st.integers(0, 40)  # many duplicates too


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "add", "remove", "count", "update"]), values), max_size=400))
def test_sorted_ints_behave_as_a_sorted_list(ops):
    sorted_ints.CHUNK, chunk = 4, sorted_ints.CHUNK  # small chunks: many splits and empty chunks
    try:
        mine, ref = SortedInts(), []
        for op, v in ops:
            if op == "add":
                mine.add(v)
                ref.insert(bisect_right(ref, v), v)
            elif op == "update":  # a batch of the value and its neighbours (bulk-loaded when empty)
                batch = [v, v, v + 1, v - 3]
                mine.update(batch)
                ref = sorted(ref + batch)
            elif op == "remove":
                held = v in ref
                assert mine.remove(v) is held
                if held:
                    ref.remove(v)
            else:
                assert mine.count_le(v) == bisect_right(ref, v)
            assert len(mine) == len(ref) and mine.min() == (ref[0] if ref else None)
        assert list(mine) == ref
        for v in ref:
            assert mine.count_le(v) == bisect_right(ref, v) and mine.count_le(v - 1) == bisect_right(ref, v - 1)
    finally:
        sorted_ints.CHUNK = chunk
