"""The pipeline's Kafka topics, created with kafka-python's admin client.

    ensure_topics(settings)    # create the missing ones; returns {name: partitions} as they exist (and waits
                               # for the group coordinator: a new broker creates __consumer_offsets on first use)
    describe_topics(settings)  # what the broker has: partitions, replication, retention, leaders

Topics (names, partitions and replication from the settings):
- events (`slamon.events`): every event kind, keyed by client. Its partition count bounds the number of
  workers doing useful work; it cannot shrink, and growing it re-keys clients (their state would be split),
  so pick it once.
- dead letter (`slamon.deadletter`): the original bytes of every rejected event; headers say why.
- SLA events (`slamon.sla-events`): JSON of every decision and withdrawal, keyed by client.
- snapshots (`<app_id>-snapshots-changelog`): the workers' checkpoint records (compacted; one partition per
  events partition; streams/checkpoint.py). The worker also declares it.
These four are every topic a worker uses (faust's `<app_id>-__assignor-__leader` topic is switched off:
`topic_disable_leader`), so `slamon topics describe` after `create` lists them all. Kafka's own internal topics
(`__consumer_offsets`, `__transaction_state`) are the broker's.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from streams.config import Settings

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    configs: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    events_cfg = {}
    if t.retention_hours is not None:
        events_cfg["retention.ms"] = str(int(t.retention_hours * HOUR_MS))
    from streams.checkpoint import SNAPSHOT_TOPIC_CONFIG, snapshot_topic_name

    return [
        TopicSpec(t.events, t.partitions, t.replication, events_cfg),
        TopicSpec(snapshot_topic_name(settings), t.partitions, t.replication, dict(SNAPSHOT_TOPIC_CONFIG)),
        TopicSpec(t.deadletter, t.deadletter_partitions or t.partitions, t.replication, {}),
        TopicSpec(t.sla_events, t.sla_events_partitions or t.partitions, t.replication, {}),
    ]


def admin_client(settings: Settings, *, timeout: float = 60.0):
    """A kafka-python admin client, retrying while no broker answers (a broker starting up)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NoBrokersAvailable

    settings.kafka.check_connection()  # a rejected password or certificate fails now, clearly, not after retries
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(**settings.kafka.kafka_python_config())
        except NoBrokersAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def ensure_topics(settings: Settings, *, timeout: float = 60.0) -> dict[str, int]:
    """Create missing topics and wait until the broker serves all of them. Returns their partition counts
    (an existing topic keeps its own count, which may differ from the settings)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = topic_specs(settings)
    admin = admin_client(settings, timeout=timeout)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another worker
                admin.create_topics([NewTopic(s.name, s.partitions, s.replication, topic_configs=s.configs)
                                     for s in missing], timeout_ms=int(timeout * 1000))
        deadline = time.monotonic() + timeout
        while True:
            counts = _partition_counts(admin, [s.name for s in specs])
            if all(counts.get(s.name) for s in specs):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not ready after {timeout:.0f}s: {counts}")
            time.sleep(0.2)
        wait_group_coordinator(admin, settings.app_id, deadline)
        return counts
    finally:
        admin.close()


def wait_group_coordinator(admin, group: str, deadline: float) -> bool:
    """Until the broker has a coordinator for the workers' consumer group. A new broker creates
    `__consumer_offsets` on the first group request and answers GroupCoordinatorNotAvailable until then, which
    the worker's consumer would log as an ERROR (and retry). False when the deadline passed first."""
    from kafka.errors import KafkaError

    while True:
        try:
            admin.describe_consumer_groups([group])
            return True
        except KafkaError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def _partition_counts(admin, names: list[str]) -> dict[str, int]:
    out = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            partitions = topic["partitions"]
            if all(p.get("leader", -1) >= 0 for p in partitions):
                out[topic["topic"]] = len(partitions)
    return out


def describe_topics(settings: Settings) -> list[dict]:
    """One dict per pipeline topic: exists, partitions, replication, retention.ms, cleanup.policy."""
    from kafka.admin import ConfigResource, ConfigResourceType

    names = [s.name for s in topic_specs(settings)]
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        out = []
        present = [n for n in names if n in existing]
        described = {t["topic"]: t for t in admin.describe_topics(present)} if present else {}
        configs: dict[str, dict[str, str]] = {}
        if present:
            responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in present])
            for response in responses:
                for resource in response.resources:
                    name, entries = resource[3], resource[4]
                    configs[name] = {e[0]: e[1] for e in entries}
        for name in names:
            if name not in existing:
                out.append({"topic": name, "exists": False})
                continue
            parts = described[name]["partitions"]
            cfg = configs.get(name, {})
            out.append({
                "topic": name, "exists": True, "partitions": len(parts),
                "replication": len(parts[0]["replicas"]) if parts else 0,
                "retention.ms": cfg.get("retention.ms"), "cleanup.policy": cfg.get("cleanup.policy"),
            })
        return out
    finally:
        admin.close()
