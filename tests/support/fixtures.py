"""pytest fixtures for the real local services (loaded from tests/conftest.py via pytest_plugins).

    kafka_broker           session-scoped single-node Kafka (KRaft); .bootstrap == "127.0.0.1:PORT".
                           Shared by the whole session: tests must use their own topics / group ids, and a
                           test that kills or restarts it must leave it running (broker.restart()).
    kafka_broker_factory   function-scoped: factory() -> a fresh, private KafkaBroker (for fault tests)
    prometheus_factory     function-scoped: factory(config_text=None, rule_files=None, alertmanagers=None,
                           **kw) -> started Prometheus (see tests/support/procs.py)
    alertmanager_factory   function-scoped: factory(config_text=None, **kw) -> started Alertmanager
    services_required      True when SLAMON_REQUIRE_SERVICES is set

When a binary or the JDK is missing, the fixtures skip with the reason, unless SLAMON_REQUIRE_SERVICES is
set (CI sets it): then they fail, so a broken install cannot pass as "skipped".
"""

from __future__ import annotations

import os

import pytest

from tests.support.procs import Alertmanager, KafkaBroker, Prometheus, ServiceError


def _required() -> bool:
    return os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"{reason} [SLAMON_REQUIRE_SERVICES is set, so this is an error]", pytrace=False)
    pytest.skip(f"{reason} (set SLAMON_REQUIRE_SERVICES=1 to make this an error)")


@pytest.fixture(scope="session")
def services_required() -> bool:
    return _required()


def _kafka_ready_to_start() -> None:
    why = KafkaBroker.missing()
    if why:
        _unavailable(f"Kafka broker unavailable: {why}")
    if not KafkaBroker.resolved():
        try:
            KafkaBroker.resolve()
        except (ServiceError, OSError) as e:
            _unavailable(f"Kafka broker unavailable: could not resolve the jars: {e}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    _kafka_ready_to_start()
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()  # a start failure is an error, never a skip
    yield broker
    broker.stop()


@pytest.fixture
def kafka_broker_factory(tmp_path_factory):
    _kafka_ready_to_start()
    brokers: list[KafkaBroker] = []

    def factory(**kwargs) -> KafkaBroker:
        b = KafkaBroker(tmp_path_factory.mktemp("kafka-private"), **kwargs)
        brokers.append(b)
        return b.start()

    yield factory
    for b in brokers:
        b.stop()


@pytest.fixture
def prometheus_factory(tmp_path_factory):
    why = Prometheus.missing()
    if why:
        _unavailable(f"Prometheus unavailable: {why}")
    started: list[Prometheus] = []

    def factory(config_text: str | None = None, rule_files=None, alertmanagers=None, **kwargs) -> Prometheus:
        p = Prometheus(tmp_path_factory.mktemp("prometheus"), config_text=config_text, rule_files=rule_files,
                       alertmanagers=alertmanagers, **kwargs)
        started.append(p)
        return p.start()

    yield factory
    for p in started:
        p.stop()


@pytest.fixture
def alertmanager_factory(tmp_path_factory):
    why = Alertmanager.missing()
    if why:
        _unavailable(f"Alertmanager unavailable: {why}")
    started: list[Alertmanager] = []

    def factory(config_text: str | None = None, **kwargs) -> Alertmanager:
        a = Alertmanager(tmp_path_factory.mktemp("alertmanager"), config_text=config_text, **kwargs)
        started.append(a)
        return a.start()

    yield factory
    for a in started:
        a.stop()
