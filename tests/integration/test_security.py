"""Security against a real broker: SASL/SCRAM and TLS listeners, the metrics endpoint's basic auth and TLS.

One `SecureKafkaBroker` per module serves PLAINTEXT, SASL_PLAINTEXT (SCRAM-SHA-512), SSL (client certificate
required) and SASL_SSL; its certificates are made by a throw-away CA at test time.

1. `slamon topics create` and `slamon produce` (kafka-python) work over each secure protocol; a consumer over
   the same protocol reads every record back;
2. a worker (faust/aiokafka) consumes through SASL_SSL and serves /metrics over https with basic auth: 401
   without or with wrong credentials, 200 with the right ones showing every event applied; /healthz open;
   faust's /table views gone; a real Prometheus scrapes it with `basic_auth` + `tls_config`; the port bound to
   127.0.0.1 does not answer on another local address;
3. a wrong SCRAM password stops the worker and `slamon produce` quickly with a clear error, and the password
   shows nowhere in their output; the worker of 2 runs at DEBUG, where kafka-python logs its configuration
   with the password: the worker's log masks it;
4. a PLAINTEXT client cannot talk to the TLS listener, an SSL client without a certificate or with the wrong
   CA is refused;
5. no secret in the broker's files (config, logs, metadata) or in the worker's.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.contracts import load_contracts
from monitor.events import to_us
from streams.config import ConfigError, KafkaSecurityError, load_settings
from streams.metrics_server import BasicAuthGuard
from streams.producer import generated_lines
from tests.support.fixtures import _kafka_ready_to_start, _unavailable
from tests.support.procs import free_port
from tests.support.secure_kafka import SECURE_PROTOCOLS, SecureKafkaBroker, TestPKI

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "examples" / "contracts.yaml"
START = "2026-03-02T08:00:00Z"


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    why = TestPKI.missing()
    if why:
        _unavailable(why)
    return TestPKI(tmp_path_factory.mktemp("pki")).create()


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory, pki):
    _kafka_ready_to_start()
    broker = SecureKafkaBroker(tmp_path_factory.mktemp("kafka-secure"), pki)
    broker.start()
    yield broker
    broker.stop()


def _names(tag: str) -> dict[str, str]:
    return {"SLAMON_TOPICS__EVENTS": f"{tag}.events", "SLAMON_TOPICS__DEADLETTER": f"{tag}.deadletter",
            "SLAMON_TOPICS__SLA_EVENTS": f"{tag}.sla-events", "SLAMON_APP_ID": tag}


def _env(broker: SecureKafkaBroker, protocol: str, tag: str, password: str | None = None, **extra: str):
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
    return {**base, "PYTHONPATH": str(ROOT), "SLAMON_TOPICS__PARTITIONS": "2", "SLAMON_CONTRACTS": str(CONTRACTS),
            **_names(tag), **broker.client_env(protocol, password=password), **extra}


def _slamon(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slamon.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _events(tmp: Path, hours: float = 2) -> tuple[Path, int]:
    start = to_us(datetime.fromisoformat(START.replace("Z", "+00:00")))
    lines = list(generated_lines(load_contracts(CONTRACTS), hours, start_us=start, seed=3))
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, len(lines)


def _consume_count(broker: SecureKafkaBroker, protocol: str, topic: str, want: int, timeout: float = 60) -> int:
    from kafka import KafkaConsumer

    settings = load_settings(None, kafka=broker.client_settings(protocol))
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", group_id=f"count-{uuid.uuid4().hex[:6]}",
                             consumer_timeout_ms=5000, **settings.kafka.kafka_python_config())
    seen, deadline = 0, time.monotonic() + timeout
    try:
        while seen < want and time.monotonic() < deadline:
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())
    finally:
        consumer.close()
    return seen


# --- 1. CLI clients over each protocol ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("protocol", SECURE_PROTOCOLS)
def test_topics_and_produce_over_secure_listener(secure_broker, tmp_path, protocol):
    tag = f"sec-{protocol.lower()}-{uuid.uuid4().hex[:6]}"
    env = _env(secure_broker, protocol, tag)
    events, count = _events(tmp_path, hours=1)

    created = _slamon(env, "topics", "create")
    assert created.returncode == 0, created.stderr[-3000:]
    assert f"{tag}.events: 2 partitions" in created.stdout
    produced = _slamon(env, "produce", str(events), "--no-progress")
    assert produced.returncode == 0, produced.stderr[-3000:]
    assert f"sent {count} events" in produced.stderr
    described = _slamon(env, "topics", "describe")
    assert described.returncode == 0, described.stderr[-3000:]
    assert orjson.loads(described.stdout.splitlines()[0])["partitions"] == 2

    assert _consume_count(secure_broker, protocol, f"{tag}.events", count) == count
    for out in (created, produced, described):
        assert secure_broker.scram_password not in out.stdout + out.stderr


# --- 2. worker over SASL_SSL, metrics with basic auth and TLS ------------------------------------------------


class HttpsScraper:
    def __init__(self, port: int, ca: Path) -> None:
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(ca))

    def get(self, path: str, auth: tuple[str, str] | None = None, host: str = "127.0.0.1") -> tuple[int, bytes]:
        req = urllib.request.Request(f"https://{host}:{self.port}{path}")
        if auth is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


def _received(body: bytes) -> float:
    return sum(s.value for family in text_string_to_metric_families(body.decode())
               for s in family.samples if s.name == "slamon_events_received_total")


def _other_local_address() -> str | None:
    """A non-loopback IPv4 address of this host, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return False
    except OSError:
        return True


@pytest.mark.integration
@pytest.mark.slow
def test_worker_over_sasl_ssl_serves_metrics_with_auth_and_tls(secure_broker, pki, tmp_path, prometheus_factory):
    tag = f"sec-worker-{uuid.uuid4().hex[:6]}"
    port = free_port()
    metrics_password = "scrape-" + uuid.uuid4().hex
    (tmp_path / "metrics-password").write_text(metrics_password + "\n")
    env = _env(secure_broker, "SASL_SSL", tag, SLAMON_METRICS_BIND=f"127.0.0.1:{port}",
               SLAMON_METRICS_USERNAME="prometheus",
               SLAMON_METRICS_PASSWORD_FILE=str(tmp_path / "metrics-password"),
               SLAMON_METRICS_TLS_CERTFILE=str(pki.cert("server")),
               SLAMON_METRICS_TLS_KEYFILE=str(pki.key("server")),
               SLAMON_CLOCK="event", SLAMON_CHECKPOINT_INTERVAL="1", SLAMON_SESSION_TIMEOUT="6",
               SLAMON_DATA_DIR=str(tmp_path / "data"), SLAMON_LOG_LEVEL="debug")
    events, count = _events(tmp_path)
    # topics first: `produce` racing the worker's start would let the broker auto-create a 1-partition topic
    created = _slamon(env, "topics", "create")
    assert created.returncode == 0, created.stderr[-3000:]
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    scraper = HttpsScraper(port, pki.ca_cert)
    right = ("prometheus", metrics_password)
    try:
        produced = _slamon(env, "produce", str(events), "--no-progress")
        assert produced.returncode == 0, produced.stderr[-3000:]
        deadline, status, body = time.monotonic() + 180, 0, b""
        while time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-4000:]
            try:
                status, body = scraper.get("/metrics", auth=right)
            except OSError:
                status = 0  # not listening yet
            if status == 200 and _received(body) == count:
                break
            time.sleep(0.5)
        assert status == 200 and _received(body) == count, (status, _received(body) if body else None,
                                                             log.read_text()[-4000:])

        assert scraper.get("/metrics")[0] == 401
        assert scraper.get("/metrics", auth=("prometheus", "wrong"))[0] == 401
        assert scraper.get("/metrics", auth=("someone", metrics_password))[0] == 401
        assert scraper.get("/healthz")[0] == 200  # liveness probes send no credentials
        assert scraper.get("/table/")[0] == 404  # faust's table views would serve the engine snapshots
        with pytest.raises(OSError):  # https only: a plain http request gets no response
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert _refused("127.0.0.2", port)  # bound to 127.0.0.1 only
        other = _other_local_address()
        if other is not None:
            assert _refused(other, port)

        _prometheus_scrapes(prometheus_factory, tmp_path, port, pki, right)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    output = log.read_text(errors="replace")
    assert '"sasl_password":"**********"' in output  # the settings line: redacted, and this is the worker's log
    # at DEBUG kafka-python logs its configuration, SASL password included: redact_secrets_in_logs masks it
    assert "Starting KafkaAdminClient with configuration" in output and "'sasl_plain_password': '**********'" in output
    for secret in (secure_broker.scram_password, metrics_password):
        assert secret not in output
        for path in (tmp_path / "data").rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def _prometheus_scrapes(prometheus_factory, tmp: Path, port: int, pki: TestPKI, auth: tuple[str, str]) -> None:
    """The scrape config of streams/README.md works against the worker: `up` is 1."""
    (tmp / "prom-password").write_text(auth[1])
    config = f"""\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: slamon
    scheme: https
    basic_auth:
      username: {auth[0]}
      password_file: {tmp / "prom-password"}
    tls_config:
      ca_file: {pki.ca_cert}
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""
    prom = prometheus_factory(config_text=config)
    up = prom.wait_for('up{job="slamon"}', lambda r: r and r[0]["value"][1] == "1", timeout=60)
    assert up[0]["value"][1] == "1"
    received = prom.wait_for('sum(slamon_events_received_total{job="slamon"})', timeout=30)
    assert float(received[0]["value"][1]) > 0


# --- 3. wrong password: fails fast, clearly, without leaking it ----------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_wrong_password_fails_fast_and_is_never_shown(secure_broker, tmp_path):
    wrong = "wrong-" + uuid.uuid4().hex
    tag = f"sec-bad-{uuid.uuid4().hex[:6]}"
    env = _env(secure_broker, "SASL_SSL", tag, password=wrong, SLAMON_LOG_LEVEL="debug",
               SLAMON_METRICS_BIND=f"127.0.0.1:{free_port()}", SLAMON_DATA_DIR=str(tmp_path / "data"))
    started = time.monotonic()
    worker = subprocess.run([sys.executable, "-m", "streams.app"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    worker_seconds = time.monotonic() - started
    output = worker.stdout + worker.stderr
    assert worker.returncode != 0
    assert worker_seconds < 60, worker_seconds
    assert "error: Kafka at" in output and "invalid credentials" in output, output[-3000:]
    assert wrong not in output and secure_broker.scram_password not in output

    events, _ = _events(tmp_path, hours=0.2)
    started = time.monotonic()
    produced = _slamon(env, "produce", str(events), "--no-progress")
    assert produced.returncode != 0
    assert time.monotonic() - started < 60
    assert "refused the connection as 'slamon' with SCRAM-SHA-512" in produced.stderr, produced.stderr[-3000:]
    assert wrong not in produced.stdout + produced.stderr


# --- 4. protocol and certificate mismatches --------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_plaintext_client_cannot_use_tls_listener(secure_broker):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    started = time.monotonic()
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap_for("SSL"), request_timeout_ms=5000,
                         api_version_auto_timeout_ms=5000)
    assert time.monotonic() - started < 30


@pytest.mark.integration
@pytest.mark.slow
def test_ssl_listener_checks_certificates(secure_broker):
    good = secure_broker.client_settings("SSL")
    load_settings(None, kafka=good).kafka.check_connection()

    no_client_cert = {k: v for k, v in good.items() if k not in ("ssl_certfile", "ssl_keyfile")}
    with pytest.raises(KafkaSecurityError, match="client certificate"):
        load_settings(None, kafka=no_client_cert).kafka.check_connection()

    system_cas = {k: v for k, v in good.items() if k != "ssl_cafile"}
    with pytest.raises(KafkaSecurityError, match="ssl_cafile"):
        load_settings(None, kafka=system_cas).kafka.check_connection()


# --- 5. no secret in the broker's files ---------------------------------------------------------------------------


@pytest.mark.integration
def test_broker_files_hold_no_secret(secure_broker):
    secret = secure_broker.scram_password.encode()
    files = [p for p in secure_broker.workdir.rglob("*") if p.is_file()]
    assert any(p.name == "server.properties" for p in files) and any(p.suffix == ".log" for p in files)
    assert [p for p in files if secret in p.read_bytes()] == []
    props = (secure_broker.workdir / "server.properties").read_text()
    assert "password" not in props.lower()


# --- settings and the auth guard (no services) ------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_guard():
    guard = BasicAuthGuard("prom", "s3cret:with:colons")
    assert guard.allows(_basic("prom", "s3cret:with:colons"))
    for header in (None, "", _basic("prom", "s3cret"), _basic("other", "s3cret:with:colons"), "Bearer x",
                   "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert not guard.allows(header), header
    assert BasicAuthGuard(None, None).allows(None)


def test_metrics_security_settings(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    settings = load_settings(None, metrics_username="prom", metrics_password_file=str(tmp_path / "pw"))
    assert settings.metrics_password.get_secret_value() == "from-file"
    assert "from-file" not in orjson.dumps(settings.describe()).decode()
    assert settings.secret_values() == ["from-file"]
    for bad in ({"metrics_username": "prom"}, {"metrics_password": "x"},
                {"metrics_username": "prom", "metrics_password": "x", "metrics_password_file": str(tmp_path / "pw")},
                {"metrics_tls_certfile": str(tmp_path / "pw")},
                {"metrics_username": "prom", "metrics_password_file": str(tmp_path / "missing")}):
        with pytest.raises(ConfigError):
            load_settings(None, **bad)
    (tmp_path / "kafka-pw").write_text("kafka-secret")
    kafka = load_settings(None, kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                       "sasl_username": "u", "sasl_password_file": str(tmp_path / "kafka-pw")})
    assert kafka.kafka.kafka_python_config()["sasl_plain_password"] == "kafka-secret"
