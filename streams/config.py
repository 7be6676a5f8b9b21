"""Worker configuration: defaults < YAML file < `SLAMON_*` environment variables < explicit overrides.

    settings = load_settings("worker.yaml")          # or load_settings() for env/defaults only
    settings = load_settings(None, clock="event")    # keyword overrides win over everything

Environment variables use the prefix `SLAMON_` and `__` for nesting, e.g. `SLAMON_KAFKA__BOOTSTRAP_SERVERS`,
`SLAMON_TOPICS__PARTITIONS`, `SLAMON_CLOCK=event`, `SLAMON_CONTRACTS=contracts.yaml` (the same variable the
replay CLI reads). The YAML file has the same shape as the model (`kafka:`, `topics:`, top-level keys) and
can also be named by `SLAMON_CONFIG`. Secrets are `SecretStr` (or `*_file` paths to read them from): never
printed, never logged; `describe()` gives a redacted view for logs, and `redact_secrets_in_logs()` masks their
values in every log record (kafka-python logs its whole configuration, password included, at DEBUG).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from monitor.errors import EXIT_UNAVAILABLE, SlamonError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurityError(SlamonError, ConnectionError):
    """The broker refused our credentials or TLS handshake: retrying cannot help (the message holds no secret)."""

    exit_code = EXIT_UNAVAILABLE


def read_secret_file(path: Path) -> SecretStr:
    """A secret from a file (Kubernetes/compose secret mounts); one trailing newline is not part of it."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read secret file {path}: {err.strerror}") from None
    return SecretStr(text.removesuffix("\n").removesuffix("\r"))


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    client_id: str = "slamon"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = Field(None, description="file holding sasl_password (instead of it)")
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    request_timeout_seconds: float = 30.0

    @model_validator(mode="after")
    def _consistent(self):
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise ValueError("give sasl_password or sasl_password_file, not both")
            self.sasl_password = read_secret_file(self.sasl_password_file)
        sasl = self.security_protocol.startswith("SASL")
        if sasl and (self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None):
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism, sasl_username "
                             "and sasl_password (or sasl_password_file)")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism is set but security_protocol is not SASL_PLAINTEXT/SASL_SSL")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (client certificate and its key)")
        return self

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_ssl:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            password = self.ssl_keyfile_password.get_secret_value() if self.ssl_keyfile_password else None
            ctx.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile), password)
        return ctx

    def kafka_python_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (KafkaProducer, KafkaConsumer, KafkaAdminClient)."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": int(self.request_timeout_seconds * 1000),
            "api_version_auto_timeout_ms": int(self.request_timeout_seconds * 1000),
        }
        if self.sasl_mechanism is not None:
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        if self.uses_ssl:
            cfg["ssl_context"] = ctx = self.ssl_context()
            if self.security_protocol == "SSL":
                # kafka-python closes a connection that becomes readable with no request in flight ("Socket
                # EVENT_READ without in-flight-requests"): a TLS 1.3 broker's post-handshake session tickets
                # do that, and failed ~1 admin call in 8 in our tests. TLS 1.2 has none. (SASL_SSL is immune:
                # the SASL request is in flight when they arrive; aiokafka/faust keep TLS 1.3.)
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return cfg

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (the checkpoint producers)."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": int(self.request_timeout_seconds * 1000),
        }
        if self.sasl_mechanism is not None:
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        if self.uses_ssl:
            cfg["ssl_context"] = self.ssl_context()
        return cfg

    def check_connection(self, timeout: float = 15.0) -> None:
        """Connect to a bootstrap server once and raise `KafkaSecurityError` if it rejects our credentials or
        TLS handshake. kafka-python otherwise reports a bad password as `IncompatibleBrokerVersion` (admin
        client) or as a metadata timeout a minute later (producer). An unreachable broker is not an error here:
        callers keep their own retries for brokers that are starting. No-op for PLAINTEXT."""
        if self.security_protocol == "PLAINTEXT":
            return
        from kafka.conn import BrokerConnection

        class Probe(BrokerConnection):
            close_error: Exception | None = None

            def close(self, error=None):  # the reason of a failed handshake is only passed to close()
                if error is not None and self.close_error is None:
                    self.close_error = error
                super().close(error)

        host, _, port = self.servers[0].rpartition(":")
        probe = Probe(host.strip("[]"), int(port), socket.AF_UNSPEC, **self.kafka_python_config())
        try:
            probe.connect_blocking(timeout)
        except ssl.SSLError as err:
            raise KafkaSecurityError(self._failure(err)) from None
        finally:
            probe.close()
        if _is_auth_error(probe.close_error):
            raise KafkaSecurityError(self._failure(probe.close_error))

    def _failure(self, err: BaseException) -> str:
        who = f" as {self.sasl_username!r} with {self.sasl_mechanism}" if self.sasl_mechanism else ""
        hint = ""
        if isinstance(err, ssl.SSLCertVerificationError):
            hint = " (is ssl_cafile the CA that signed the broker's certificate?)"
        elif isinstance(err, ssl.SSLError) and "CERTIFICATE" in str(err).upper():
            hint = " (the broker wants a client certificate: ssl_certfile / ssl_keyfile)"
        detail = str(err) if type(err).__name__ in str(err) else f"{type(err).__name__}: {err}"
        return f"Kafka at {self.servers[0]} refused the connection{who} over {self.security_protocol}: {detail}{hint}"

    def faust_credentials(self):
        """`broker_credentials` for faust (None for PLAINTEXT)."""
        import faust

        if self.security_protocol == "PLAINTEXT":
            return None
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        password = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return faust.SASLCredentials(username=self.sasl_username, password=password,
                                     mechanism=self.sasl_mechanism, ssl_context=self.ssl_context())


def _is_auth_error(err: BaseException | None) -> bool:
    from kafka import errors

    return isinstance(err, (errors.SaslAuthenticationFailedError,
                            errors.UnsupportedSaslMechanismError, errors.IllegalSaslStateError))


class TopicSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: str = "slamon.events"
    deadletter: str = "slamon.deadletter"
    sla_events: str = "slamon.sla-events"
    partitions: int = Field(4, ge=1, description="partitions of the events topic (= max parallel workers)")
    deadletter_partitions: int | None = Field(None, ge=1, description="default: same as events")
    sla_events_partitions: int | None = Field(None, ge=1, description="default: same as events")
    replication: int = Field(1, ge=1)
    retention_hours: float | None = Field(None, description="retention.ms of the events topic; None: broker "
                                                             "default. Keep it > the checkpoint interval plus "
                                                             "any outage you want to survive")

    @field_validator("events", "deadletter", "sla_events")
    @classmethod
    def _legal(cls, name: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name) or name in (".", ".."):
            raise ValueError(f"{name!r} is not a legal Kafka topic name")
        return name


class Settings(BaseSettings):
    """Everything a worker, producer or topic admin needs."""

    model_config = SettingsConfigDict(env_prefix="SLAMON_", env_nested_delimiter="__", extra="forbid",
                                      validate_default=True)

    app_id: str = Field("slamon", description="consumer group id and prefix of the state topics")
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    contracts: Path = Path("examples/contracts.yaml")
    metrics_bind: str = Field("127.0.0.1:9464", description="host:port of /metrics (the worker's web server)")
    metrics_username: str | None = Field(None, description="HTTP basic auth user for /metrics (None: open)")
    metrics_password: SecretStr | None = None
    metrics_password_file: Path | None = Field(None, description="file holding metrics_password (instead of it)")
    metrics_tls_certfile: Path | None = Field(None, description="PEM certificate (chain): serve https")
    metrics_tls_keyfile: Path | None = Field(None, description="PEM private key of metrics_tls_certfile")
    checkpoint_interval: float = Field(5.0, gt=0, description="seconds between engine snapshots/commits")
    tick_interval: float = Field(1.0, gt=0, description="seconds between clock ticks (deadline decisions)")
    clock: Literal["wall", "event"] = "wall"
    max_future_seconds: float | None = Field(
        300.0, description="wall clock only: events this far ahead of the worker's clock are dead-lettered "
                           "as `future` (they would decide deadlines early). None disables the check")
    state_store: str = Field("memory://", description="deprecated, ignored: the worker has no faust table "
                             "(snapshots live in the <app_id>-snapshots-changelog topic); accepted for old configs")
    data_dir: Path = Field(Path(".slamon-data"), description="faust's data dir (<data_dir>/<app_id>): faust only "
                           "creates empty directories there (no tables, no state on disk); need not persist. Give each "
                           "worker on a host its own (SLAMON_DATA_DIR) all the same")
    standby_replicas: int = Field(0, ge=0, description="deprecated, ignored: no faust table to keep standbys of; "
                                  "accepted for old configs")
    session_timeout: float = Field(10.0, ge=6, description="consumer group session timeout (seconds): how "
                                   "long a crashed worker keeps its partitions before the group moves them "
                                   "(heartbeats every tenth of it, from the consumer's own thread, so restores and "
                                   "checkpoints do not hold them up). A worker that stops cleanly leaves at once")
    group_instance_id: str | None = Field(None, description="static group membership (KIP-345): a stable name per "
                                          "worker (e.g. the pod name). A worker restarted under the same name gets "
                                          "its partitions back without a rebalance; but one that stops for good "
                                          "keeps them for session_timeout (a static member does not leave). None: "
                                          "dynamic membership")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    stream_buffer_maxsize: int = Field(16384, ge=1)
    max_poll_records: int | None = Field(None, description="broker_max_poll_records (None: faust default)")
    fetch_max_wait_ms: int = Field(
        50, ge=1, le=30_000, description="how long the broker may hold a fetch with no new data. The consumer "
        "has one fetch in flight per broker and leaves partitions with buffered records out of it, so a fetch "
        "for idle partitions blocks the busy ones for this long (faust's fixed 1500 ms halved throughput and "
        "added seconds of latency)")

    @field_validator("state_store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value.split("://")[0] not in ("memory", "rocksdb"):
            raise ValueError("state_store is memory:// or rocksdb://")
        return value if "://" in value else value + "://"

    @field_validator("metrics_bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"metrics_bind is host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _metrics_security(self):
        if self.metrics_password_file is not None:
            if self.metrics_password is not None:
                raise ValueError("give metrics_password or metrics_password_file, not both")
            self.metrics_password = read_secret_file(self.metrics_password_file)
        if (self.metrics_username is None) != (self.metrics_password is None):
            raise ValueError("metrics_username and metrics_password (or metrics_password_file) go together")
        if self.metrics_password is not None and not self.metrics_password.get_secret_value():
            raise ValueError("metrics_password is empty")
        if (self.metrics_tls_certfile is None) != (self.metrics_tls_keyfile is None):
            raise ValueError("metrics_tls_certfile and metrics_tls_keyfile go together")
        return self

    def secret_values(self) -> list[str]:
        """The values of every secret setting (to mask them in logs)."""
        secrets = (self.kafka.sasl_password, self.kafka.ssl_keyfile_password, self.metrics_password)
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]

    @property
    def metrics_host(self) -> str:
        return self.metrics_bind.rpartition(":")[0].strip("[]")

    @property
    def metrics_port(self) -> int:
        return int(self.metrics_bind.rpartition(":")[2])

    def describe(self) -> dict[str, Any]:
        """The settings for a log line: secrets redacted (SecretStr dumps as '**********')."""
        return self.model_dump(mode="json")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE.get("path")
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


_CONFIG_FILE: dict[str, Path | None] = {}


def redact_secrets_in_logs(settings: Settings) -> None:
    """Mask the values of the settings' secrets in every log record from now on, whichever library logs
    them and whichever handlers faust installs later (the record factory runs before any handler)."""
    secrets = sorted(settings.secret_values(), key=len, reverse=True)
    if not secrets:
        return
    make_record = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        if any(secret in message for secret in secrets):
            for secret in secrets:
                message = message.replace(secret, "**********")
            record.msg, record.args = message, None
        return record

    logging.setLogRecordFactory(redacting_factory)


class ConfigError(SlamonError, ValueError):
    """A settings problem, with a message fit for the command line."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (or $SLAMON_CONFIG), the environment and `overrides`."""
    path = config_file or os.environ.get("SLAMON_CONFIG") or None
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    from pydantic import ValidationError

    _CONFIG_FILE["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()]
        where = f" ({path})" if path else ""
        raise ConfigError(f"invalid settings{where}:\n  " + "\n  ".join(lines)) from None
    finally:
        _CONFIG_FILE.pop("path", None)
    _warn_ignored(settings)
    return settings


_IGNORED = {
    "state_store": ("memory://", "SLAMON_STATE_STORE"),
    "standby_replicas": (0, "SLAMON_STANDBY_REPLICAS"),
}
_WARNED: set[str] = set()


def _warn_ignored(settings: Settings) -> None:
    """Warn once per process for each deprecated setting given a non-default value (it has no effect)."""
    for name, (default, env) in _IGNORED.items():
        value = getattr(settings, name)
        if value != default and name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(f"{name} ({env}) = {value!r} is ignored: the worker keeps engine snapshots in the "
                          "compacted <app_id>-snapshots-changelog topic and reads them back itself, with no faust "
                          "table, store or standbys; remove the setting", FutureWarning, stacklevel=3)
