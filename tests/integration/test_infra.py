"""The local test infrastructure itself: Kafka (kafka-python and aiokafka clients), Prometheus, Alertmanager.

Run: python -m pytest tests/integration/test_infra.py -q   (SLAMON_REQUIRE_SERVICES=1 turns skips into errors)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

pytestmark = pytest.mark.integration


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_kafka_python_round_trip_with_consumer_group(kafka_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic, group = _name("infra-kp"), _name("g")
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    sent = [f"m{i}".encode() for i in range(5)]
    for v in sent:
        producer.send(topic, key=b"k", value=v)  # auto-created topic, 1 partition
    producer.flush(10)
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    got = []
    for msg in consumer:
        got.append(msg.value)
        if len(got) == len(sent):
            break
    consumer.commit()
    assert consumer.committed(TopicPartition(topic, 0)) == len(sent)
    consumer.close()
    assert got == sent


def test_kafka_python_idempotent_and_transactional_producer(kafka_broker):
    from kafka import KafkaConsumer, KafkaProducer

    topic = _name("infra-tx")
    idem = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True, acks="all")
    idem.send(topic, b"idempotent").get(timeout=15)
    idem.close()

    tx = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, transactional_id=_name("tx"))
    tx.init_transactions()
    tx.begin_transaction()
    tx.send(topic, b"committed")
    tx.commit_transaction()
    tx.begin_transaction()
    tx.send(topic, b"aborted")
    tx.abort_transaction()
    tx.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest")
    values, deadline = [], time.monotonic() + 30  # polled, not one timed read: a loaded machine's first fetch is slow
    while len(values) < 2 and time.monotonic() < deadline:
        values += [m.value for batch in consumer.poll(timeout_ms=500).values() for m in batch]
    values += [m.value for batch in consumer.poll(timeout_ms=1000).values() for m in batch]  # nothing after them
    consumer.close()
    assert values == [b"idempotent", b"committed"]


def test_kafka_python_admin_create_and_describe(kafka_broker):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    topic = _name("infra-admin")
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
        deadline = time.monotonic() + 15
        while True:  # the broker's metadata cache learns of a new topic a moment after CreateTopics returns
            (desc,) = admin.describe_topics([topic])
            if desc["error_code"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert desc["error_code"] == 0
        assert sorted(p["partition"] for p in desc["partitions"]) == list(range(6))
        assert all(p["leader"] == 1 and p["replicas"] == [1] for p in desc["partitions"])
        assert topic in admin.list_topics()
    finally:
        admin.close()


def test_aiokafka_round_trip_with_group_commit(kafka_broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic, group = _name("infra-aio"), _name("g")

    async def main():
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        finally:
            await admin.close()

        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, f"v{i}".encode(), partition=i % 2)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            got = []

            async def read():
                async for msg in consumer:
                    got.append(msg.value)
                    if len(got) == 10:
                        return

            await asyncio.wait_for(read(), 20)
            await consumer.commit()
            committed = [await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)]
        finally:
            await consumer.stop()
        return got, committed

    got, committed = asyncio.run(main())
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(10))
    assert committed == [5, 5]


FAUST_APP = textwrap.dedent("""
    import asyncio, os
    import faust

    SUF = os.environ["SUF"]
    app = faust.App("infra-" + SUF, broker="kafka://" + os.environ["BS"], store="memory://",
                    processing_guarantee="exactly_once", topic_partitions=2, topic_replication_factor=1,
                    web_enabled=False, datadir=os.environ["DATADIR"], broker_commit_interval=0.5)
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    # internal=True: faust creates these topics itself (its own CreateTopics request through aiokafka)
    src = app.topic("src-" + SUF, partitions=2, internal=True, **raw)
    out = app.topic("out-" + SUF, partitions=1, internal=True, **raw)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(src)
    async def proc(stream):
        async for key, value in stream.items():
            counts[key] += 1
            await out.send(key=key, value=value)

    @app.task
    async def ready():
        print("FAUST-READY", flush=True)

    if __name__ == "__main__":
        app.main()
""")


@pytest.mark.slow
def test_faust_exactly_once_worker(kafka_broker, tmp_path):
    """faust-streaming + aiokafka against the broker: topic creation via faust's admin path, a consumer group,
    a table changelog and transactional (exactly_once) output visible to read_committed readers."""
    from kafka import KafkaConsumer, KafkaProducer

    suf = uuid.uuid4().hex[:8]
    (tmp_path / "infra_app.py").write_text(FAUST_APP)
    env = dict(os.environ, BS=kafka_broker.bootstrap, SUF=suf, DATADIR=str(tmp_path / "data"))
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "infra_app.py", "worker", "-l", "info"], cwd=tmp_path,
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 40
        while b"FAUST-READY" not in (tmp_path / "worker.log").read_bytes():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        for i in range(20):
            producer.send("src-" + suf, key=b"k%d" % (i % 4), value=b"v%d" % i)
        producer.flush(10)
        producer.close()

        def committed(topic: str) -> int:
            c = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, isolation_level="read_committed",
                              auto_offset_reset="earliest", consumer_timeout_ms=1000)
            n = sum(1 for _ in c)
            c.close()
            return n

        # Both topics are polled until complete: faust buffers a table's changelog sends, so the changelog can
        # commit in a later transaction than the output (seen in CI: 2 of 20 when the output had 20).
        deadline = time.monotonic() + 30
        changelog = f"infra-{suf}-counts-changelog"
        while (committed("out-" + suf) < 20 or committed(changelog) < 20) and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        assert committed("out-" + suf) == 20
        assert committed(changelog) == 20
    finally:
        os.killpg(worker.pid, 9)
        worker.wait(10)


def test_prometheus_scrapes_itself(prometheus_factory):
    prom = prometheus_factory()  # default config: scrape itself every 1 s
    result = prom.wait_for('up{job="prometheus"}', timeout=20)
    assert result[0]["value"][1] == "1"
    assert result[0]["metric"]["instance"] == prom.address


def test_prometheus_loads_rule_files(prometheus_factory):
    rules = """\
groups:
  - name: infra
    interval: 1s
    rules:
      - record: infra:up:sum
        expr: sum(up)
      - alert: InfraAlwaysFiring
        expr: vector(1)
        labels: {severity: test}
"""
    prom = prometheus_factory(rule_files={"infra.yml": rules})
    assert prom.wait_for("infra:up:sum", timeout=20)[0]["value"][1] == "1"
    assert [r["name"] for g in prom.rules() for r in g["rules"]] == ["infra:up:sum", "InfraAlwaysFiring"]


def test_alertmanager_v2_post_and_read_back(alertmanager_factory):
    am = alertmanager_factory()
    name = _name("InfraTest")
    am.post_alerts([{
        "labels": {"alertname": name, "severity": "test"},
        "annotations": {"summary": "posted by test_infra"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }])
    alerts = am.wait_for_alerts(filters=[f'alertname="{name}"'], timeout=10)
    assert len(alerts) == 1
    assert alerts[0]["labels"]["severity"] == "test"
    assert alerts[0]["annotations"]["summary"] == "posted by test_infra"
    assert alerts[0]["status"]["state"] == "active"
