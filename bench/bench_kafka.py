"""The broker and settings the Kafka benchmarks share: a broker of their own unless one is given."""

from __future__ import annotations

from pathlib import Path

from streams.config import Settings, load_settings

PARTITIONS = 4


def broker_for(bootstrap: str | None, workdir: Path):
    """(bootstrap, broker): `bootstrap` as given, or a single-node broker started under `workdir` (the caller
    stops it; None when given)."""
    if bootstrap:
        return bootstrap, None
    from tests.support.procs import KafkaBroker

    broker = KafkaBroker(workdir / "kafka").start()
    return broker.bootstrap, broker


def bench_settings(bootstrap: str, prefix: str) -> Settings:
    """Settings for topics named after `prefix`, 4 partitions."""
    topics = {"events": f"{prefix}.events", "deadletter": f"{prefix}.deadletter",
              "sla_events": f"{prefix}.sla-events", "partitions": PARTITIONS}
    return load_settings(None, kafka={"bootstrap_servers": bootstrap}, topics=topics)
