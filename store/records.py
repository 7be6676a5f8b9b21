"""SLA-events records as the store keeps them, and the rule that turns a stretch of the topic into writes.

A record of the SLA-events topic (streams.partition_engine.sla_event, docs/sla-record.md) is a decision
(`change: decided`) or the withdrawal of an earlier one (`change: withdrawn`). The topic is read as
**decided = upsert, withdrawn = delete, in topic order**, keyed by (client, sla, item): at any moment an item
holds at most one decision per SLA (the engine withdraws the old one before it decides the new one), so this
reading is exact, including an item decided, withdrawn and decided again at one instant, and a decision the
worker published twice after a crash (the second is an upsert of the same row).

Surveys and audits have no item id: their key is the input position that decided them
(`@<source_partition>:<source_offset>`), stable across worker restarts, so a republished one is an upsert too.

`net_writes` folds a batch into the writes that leave the database as applying the records one by one would:
the last record per key wins (an upsert or a delete), and every withdrawal is kept for the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from monitor.errors import SlamonError
from monitor.sketch import _LOG_GAMMA, _MIN_VALUE

DECIDED, WITHDRAWN = "decided", "withdrawn"
ZERO_KEY = -1_000_000  # the sketch's zero bucket (values <= 1 us); real keys are > -700

# The columns of a decision row, in order (tables sla_decisions and sla_withdrawals, store.db).
COLUMNS = (
    "client", "sla", "item_key", "item", "kind", "period", "at_us", "outcome",
    "decided", "good", "bad", "total", "sample", "sketch_key",
    "priority", "queue", "channel", "start_us", "deadline_us", "stop_us", "elapsed_s", "paused_s", "target_s",
    "trigger", "source_partition", "source_offset", "topic_partition", "topic_offset",
)
KEY = ("client", "sla", "item_key")
_ENRICHED = ("kind", "period", "decided", "good", "bad", "total", "sample")
_ENRICHED_SET = frozenset(_ENRICHED)
_OPTIONAL = ("priority", "queue", "channel", "start_us", "deadline_us", "stop_us", "elapsed_s", "paused_s",
             "target_s", "trigger", "source_partition", "source_offset")


class RecordError(SlamonError, ValueError):
    """An SLA-events record the store cannot read (not JSON, a field missing): its topic position says which."""


@dataclass(slots=True)
class Change:
    change: str  # DECIDED | WITHDRAWN
    key: tuple[str, str, str]
    row: tuple  # COLUMNS


def sketch_key(sample: float | None) -> int | None:
    """The latency sketch's bucket of `sample` (monitor.sketch.LogSketch.add): the store counts rows per key."""
    if sample is None:
        return None
    if sample <= _MIN_VALUE:
        return ZERO_KEY
    return math.ceil(math.log(sample) / _LOG_GAMMA)


def parse(value: bytes, partition: int, offset: int, fill=None) -> Change:
    """One SLA-events record read at (partition, offset). `fill(record)` completes records of workers older than
    the enriched format (kind, period, amounts) from the contracts; without it such a record is refused."""
    try:
        rec = orjson.loads(value)
        change = rec["change"]
        if change not in (DECIDED, WITHDRAWN):
            raise KeyError("change")
        if not rec.keys() >= _ENRICHED_SET:
            if fill is None:
                raise KeyError(next(name for name in _ENRICHED if name not in rec))
            fill(rec)
        client, sla, item, at = rec["client"], rec["sla"], rec.get("item"), rec["at_us"]
        item_key = item if item is not None else f"@{rec.get('source_partition')}:{rec.get('source_offset')}"
        sample = rec["sample"]
        row = (
            client, sla, item_key, item, rec["kind"], rec["period"], int(at), rec["outcome"],
            float(rec["decided"]), float(rec["good"]), float(rec["bad"]), float(rec["total"]), sample,
            sketch_key(sample), *map(rec.get, _OPTIONAL), partition, offset,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise RecordError(f"SLA-events record at partition {partition} offset {offset} is not readable "
                          f"({type(err).__name__}: {err})",
                          hint="it was not written by a slamon worker; the store stops here rather than skip "
                               "a decision") from None
    return Change(change, (client, sla, item_key), row)


def net_writes(changes: list[Change]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(rows to upsert, keys to delete, withdrawn rows to log) equal to applying `changes` one by one in order
    (decided = upsert, withdrawn = delete)."""
    final: dict[tuple, tuple | None] = {}
    withdrawn = []
    for ch in changes:
        if ch.change == DECIDED:
            final[ch.key] = ch.row
        else:
            final[ch.key] = None
            withdrawn.append(ch.row)
    upserts = [row for row in final.values() if row is not None]
    deletes = [key for key, row in final.items() if row is None]
    return upserts, deletes, withdrawn


def contract_filler(contracts):
    """`fill` for `parse`: the kind, period and ledger amounts of a record from a worker older than the enriched
    format, from the contracts (outcome good/bad = one decided item; `measured` items carry no amount then)."""
    from monitor.periods import period_of

    slas = {(name, s.name): s for name, client in contracts.clients.items() for s in client.slas}
    zones = {name: client.timezone for name, client in contracts.clients.items()}

    def fill(rec: dict) -> None:
        sla = slas.get((rec["client"], rec["sla"]))
        if sla is None:
            raise KeyError(f"{rec['client']}/{rec['sla']} is not in the contracts")
        rec.setdefault("kind", sla.kind)
        if "period" not in rec:
            rec["period"] = "rolling" if not isinstance(sla.period, str) else \
                period_of(rec["at_us"], sla.period, zones[rec["client"]]).label
        rec.setdefault("decided", 1)
        rec.setdefault("good", 1 if rec["outcome"] == "good" else 0)
        rec.setdefault("bad", 1 if rec["outcome"] == "bad" else 0)
        rec.setdefault("total", 0.0)
        rec.setdefault("sample", None)

    return fill
