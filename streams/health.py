"""What a worker owns and how far behind it is: the `/healthz` document and the ownership metrics.

/healthz (JSON, open: liveness probes send no credentials):

    {"partitions": [0, 2], "engines": [0, 2],             # assigned, and restored (an engine exists)
     "offsets": {"0": 41230, "2": 39877},                  # last input offset applied per partition
     "end_offsets": {"0": 41231, "2": 39900},              # the events topic's end offsets (null: not fetched yet)
     "lag": {"0": 0, "2": 22},                             # end offset - (offset + 1): messages not applied
     "lag_total": 22,
     "clients": {"0": ["acme"], "2": ["globex", "hooli"]}, # clients whose series this worker exports
     "owned_clients": 3,
     "checkpoints": 17, "checkpoint_failures": 0, "clock": "wall",
     "group": {"id": "slamon", "member_id": "...", "generation": 4, "instance_id": null,
               "session_timeout": 10.0}}

Client names are business data: when `/metrics` has a password, `clients` is only in the answer to a request
that sends it (`owned_clients`, the count, always is).

Metrics (one worker's view; `slamon_consumer_lag_messages` is the engine collector's):
`slamon_input_end_offset{partition}` the events topic's end offset, `slamon_owned_client{client, partition}` 1
for each client whose series this worker exports, `slamon_owned_partitions` the partitions with an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.types import TP

if TYPE_CHECKING:
    from streams.app import Runtime

END_OFFSET = "slamon_input_end_offset"
OWNED_CLIENT = "slamon_owned_client"
OWNED_PARTITIONS = "slamon_owned_partitions"


def end_offset(runtime: Runtime, partition: int) -> int | None:
    """The events topic's end offset of `partition` as the consumer last fetched it (None: not known yet)."""
    try:
        highwater = runtime.app.consumer.highwater(TP(runtime.events_topic_name, partition))
    except Exception:
        return None
    return None if highwater is None else int(highwater)


def consumer_lag(runtime: Runtime, partition: int) -> int | None:
    """Messages of `partition` not applied yet (None: not owned, or its end offset not known yet)."""
    pe = runtime.engines.get(partition)
    end = end_offset(runtime, partition)
    if end is None or pe is None:
        return None
    return max(0, end - (pe.offset + 1))


def owned_clients(runtime: Runtime) -> dict[int, list[str]]:
    """partition -> the clients whose series this worker exports (their designated partition is that one)."""
    return {p: sorted(pe.owned) for p, pe in sorted(runtime.engines.items())}


def group_info(runtime: Runtime) -> dict[str, Any]:
    info: dict[str, Any] = {"id": runtime.settings.app_id, "instance_id": runtime.settings.group_instance_id,
                            "session_timeout": runtime.settings.session_timeout}
    try:
        coordinator = runtime.app.consumer._thread._ensure_consumer()._coordinator
        info["member_id"], info["generation"] = coordinator.member_id or None, coordinator.generation
    except Exception:  # not started, or stopping
        info["member_id"], info["generation"] = None, None
    return info


def health(runtime: Runtime, *, show_clients: bool = True) -> dict[str, Any]:
    """The /healthz document (see the module docstring)."""
    engines = runtime.engines
    ends = {p: end_offset(runtime, p) for p in sorted(engines)}
    lag = {p: None if ends[p] is None else max(0, ends[p] - (engines[p].offset + 1)) for p in ends}
    clients = owned_clients(runtime)
    doc: dict[str, Any] = {
        "partitions": sorted(runtime.assigned), "engines": sorted(engines),
        "offsets": {p: pe.offset for p, pe in engines.items()},
        "end_offsets": ends, "lag": lag,
        "lag_total": None if any(v is None for v in lag.values()) else sum(lag.values()),
        "owned_clients": sum(len(c) for c in clients.values()),
        "checkpoints": runtime.checkpointer.checkpoints,
        "checkpoint_failures": runtime.checkpointer.checkpoint_failures,
        "clock": runtime.settings.clock,
        "group": group_info(runtime),
    }
    if show_clients:
        doc["clients"] = clients
    return doc


class OwnershipCollector:
    """`slamon_input_end_offset`, `slamon_owned_client`, `slamon_owned_partitions` (module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        runtime = self.runtime
        ends = GaugeMetricFamily(END_OFFSET, "End offset of the events topic partition (the next offset to be "
                                 "written), as the consumer last fetched it", labels=["partition"])
        owned = GaugeMetricFamily(OWNED_CLIENT, "1 for each client whose series this worker exports (its events' "
                                  "partition is owned here)", labels=["client", "partition"])
        for partition, pe in sorted(runtime.engines.items()):
            end = end_offset(runtime, partition)
            if end is not None:
                ends.add_metric([str(partition)], end)
            for client in sorted(pe.owned):
                owned.add_metric([client, str(partition)], 1)
        yield ends
        yield owned
        yield GaugeMetricFamily(OWNED_PARTITIONS, "Events topic partitions this worker owns (with an engine)",
                                value=len(runtime.engines))
