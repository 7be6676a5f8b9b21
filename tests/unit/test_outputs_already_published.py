"""After a restore, outputs the previous owner already published are not sent twice (streams/outputs.py): per
item, an equal prefix is skipped; at the first difference the skipped ones are sent after all, then the rest.
The checkpoint keeps the offsets of the newest confirmed outputs (`published`)."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.contracts import load_contracts
from streams.config import load_settings
from streams.outputs import ALREADY_PUBLISHED, Expected, OutputPublisher, identity
from streams.partition_engine import DEADLETTER, SLA_EVENTS, Output, PartitionEngine
from streams.state_records import changed_records, restore_partition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"
TP = ("slamon.sla-events", 1)


def sla(item: str, outcome: str, change: str = "decided", trigger: str = "event", offset: int | None = 7) -> Output:
    value = orjson.dumps({"client": "acme", "sla": "first-response", "item": item, "outcome": outcome,
                          "change": change, "trigger": trigger, "source_partition": 1, "source_offset": offset})
    return Output(SLA_EVENTS, b"acme", value, [("change", change.encode())])


def expect(pe: PartitionEngine, *published: tuple[Output, int]) -> None:
    for out, offset in published:
        item, content = identity(out.kind, out.key, out.value, out.headers)
        pe.expected.setdefault(item, Expected()).records.append((content, TP, offset))


def holder() -> PartitionEngine:
    return PartitionEngine(1, load_contracts(EXAMPLES), num_partitions=4)


def test_equal_prefix_skipped_and_a_difference_resends_that_item_only():
    pe = holder()
    expect(pe, (sla("A", "good"), 10), (sla("B", "bad"), 11), (sla("B", "bad", "withdrawn"), 12))
    publisher = OutputPublisher(app=None, settings=load_settings(None))
    a = sla("A", "good", trigger="clock", offset=None)  # the same decision, made by a clock tick this time
    b1, b2, c = sla("B", "bad"), sla("B", "good"), sla("C", "bad")
    for out in (a, b1, b2, c):
        pe._emit(out)
    sent = publisher._skip_published(pe, pe.take_unsent())
    assert sent == [b1, b2, c]  # B's skipped record goes out again before B's differing one
    assert a.future is ALREADY_PUBLISHED and a.confirmed and b1.future is None
    assert publisher.skipped == 1 and pe.expected == {}  # A done, B abandoned
    assert pe.published == {TP: 11}  # what the topic holds, matched or not: B1 at 11 is there (and resent)
    pe.prune_outbox()
    assert a not in pe.outbox and b1 in pe.outbox


def test_dead_letters_match_by_input_offset():
    pe = holder()
    letter = Output(DEADLETTER, None, b"{not json", [("reason", b"malformed"), ("source_partition", b"1"),
                                                     ("source_offset", b"41")])
    expect(pe, (letter, 3))
    publisher = OutputPublisher(app=None, settings=load_settings(None))
    again = Output(DEADLETTER, None, b"{not json", list(letter.headers))
    pe._emit(again)
    assert publisher._skip_published(pe, pe.take_unsent()) == []
    assert again.confirmed and pe.published == {TP: 3}


def test_published_offsets_survive_a_checkpoint():
    pe = holder()
    pe.published = {TP: 41, ("slamon.deadletter", 0): 3}
    restored = restore_partition(1, pe.contracts, dict(changed_records(pe, full=True)), num_partitions=4)
    assert restored.published == pe.published
