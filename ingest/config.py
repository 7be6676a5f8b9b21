"""The gateway's config file (YAML, `version: 1`), validated by pydantic. Relative paths are relative to the file.

    version: 1
    contracts: ../examples/contracts.yaml      # the clients events may name (the worker's decoder checks them)
    listen: 0.0.0.0:8088
    kafka: {bootstrap_servers: "kafka:9092"}   # streams.config.KafkaSettings: security as for the worker
    topics: {events: slamon.events, deadletter: slamon.deadletter}
    max_in_flight: 1000                        # deliveries waiting for Kafka; beyond: 429 + Retry-After
    produce_timeout_seconds: 5                 # no acknowledgement by then: 503 (the vendor retries)
    event_loop: uvloop                         # or asyncio (the standard loop)
    http_server: native                        # or aiohttp (ingest/http.py: about 0.6x aiohttp's CPU per delivery)
    producer: {linger_ms: 5}                   # how long the producer waits to fill a batch (acks=all always)
    endpoints:                                 # POST /hooks/<name>
      zendesk-acme:
        connector: zendesk
        client: acme-retail                    # fixed, or from a payload field through a map:
        # client: {field: detail.brand_id, map: {"360001": acme-retail, "360002": globex-bank}}
        auth: {secret_file: /run/secrets/zendesk-acme}          # scheme: the connector's (here `zendesk`)
        options: {priorities: {urgent: P1, high: P2, normal: P3, low: P4}, statuses: {hold: on_hold}}
    tails:                                     # files followed by the same process (Asterisk queue_log)
      pbx1:
        connector: asterisk
        path: /var/log/asterisk/queue_log
        position_file: /var/lib/slamon/pbx1.pos
        client: {field: queue, map: {sales: acme-retail}}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.auth import SCHEMES, Verifier
from ingest.connectors import connector, names
from ingest.connectors.base import get
from ingest.errors import IngestConfigError
from streams.config import KafkaSettings

MAX_CONFIG_BYTES = 1 << 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthConfig(_Model):
    scheme: Literal[SCHEMES] | None = Field(None, description="default: the connector's own scheme")  # type: ignore[valid-type]
    secret_file: Path
    header: str | None = Field(None, description="scheme `header`: the header's name, e.g. X-Api-Key")
    public_url: str | None = Field(None, description="twilio: the URL exactly as configured at Twilio")
    max_age_seconds: float | None = Field(None, gt=0, description="zendesk: refuse signatures older than this")


class ClientFrom(_Model):
    field: str = Field(description="dotted path into the payload, e.g. detail.brand_id or company")
    map: dict[str, str] = Field(default_factory=dict, description="payload value -> client; empty: the value")
    default: str | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _str_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def resolve(self, payload: Any) -> str | None:
        value = get(payload, self.field)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            key = str(value)
            return self.map.get(key, self.default if self.map else key)
        return self.default


class Source(_Model):
    connector: str
    client: str | ClientFrom
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("connector")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in names():
            raise ValueError(f"unknown connector {value!r} (one of {', '.join(names())})")
        return value

    @model_validator(mode="after")
    def _options(self):
        module = connector(self.connector)
        try:
            self._parsed_options = module.Options.model_validate(self.options)
        except ValidationError as err:
            problems = "; ".join(f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in err.errors()[:5])
            raise ValueError(f"{self.connector} {problems}") from None
        return self

    @property
    def parsed_options(self):
        return self._parsed_options

    def client_for(self, payload: Any) -> str | None:
        return self.client if isinstance(self.client, str) else self.client.resolve(payload)


class Endpoint(Source):
    auth: AuthConfig

    @model_validator(mode="after")
    def _not_a_file_source(self):
        if connector(self.connector).BODY == "lines":
            raise ValueError(f"connector {self.connector!r} reads a file: declare it under `tails:`")
        return self


class Tail(Source):
    @model_validator(mode="after")
    def _a_file_source(self):
        if connector(self.connector).BODY != "lines":
            raise ValueError(f"connector {self.connector!r} receives webhooks: declare it under `endpoints:`")
        return self

    path: Path
    position_file: Path | None = Field(None, description="where the read position is kept across restarts")
    poll_seconds: float = Field(0.5, gt=0)
    from_start: bool = Field(False, description="no saved position: read the file from its start (else its end)")


class IngestTopics(_Model):
    events: str = "slamon.events"
    deadletter: str = "slamon.deadletter"

    @field_validator("events", "deadletter")
    @classmethod
    def _legal(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name) or name in (".", ".."):
            raise ValueError(f"{name!r} is not a legal Kafka topic name")
        return name


class ProducerSettings(_Model):
    linger_ms: int = Field(5, ge=0, le=1000, description="wait this long for more records before sending a batch")


class GatewayConfig(_Model):
    version: Literal[1]
    contracts: Path
    listen: str = "127.0.0.1:8088"
    kafka: KafkaSettings = KafkaSettings()
    topics: IngestTopics = IngestTopics()
    max_in_flight: int = Field(1000, ge=1, description="deliveries waiting for Kafka at once; more get 429")
    produce_timeout_seconds: float = Field(5.0, gt=0)
    retry_after_seconds: int = Field(2, ge=1)
    event_loop: Literal["uvloop", "asyncio"] = Field("uvloop", description="uvloop when installed, else asyncio")
    http_server: Literal["native", "aiohttp"] = Field("native", description="ingest/http.py, or aiohttp's server")
    producer: ProducerSettings = ProducerSettings()
    max_body_bytes: int = Field(1 << 20, ge=1024)
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    tails: dict[str, Tail] = Field(default_factory=dict)

    @field_validator("listen")
    @classmethod
    def _hostport(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"listen is host:port, got {value!r}")
        return value

    @field_validator("endpoints")
    @classmethod
    def _names(cls, value: dict[str, Endpoint]) -> dict[str, Endpoint]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
                raise ValueError(f"endpoint name {name!r}: letters, digits, . _ - only (it is a URL path)")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def read_secret(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise IngestConfigError(f"cannot read secret file {path}: {err.strerror}",
                                hint="secrets are read from files only (secret_file:)") from None
    data = data.removesuffix(b"\n").removesuffix(b"\r")
    if not data:
        raise IngestConfigError(f"secret file {path} is empty")
    return data


def verifier(endpoint: Endpoint) -> Verifier:
    scheme = endpoint.auth.scheme or connector(endpoint.connector).AUTH
    try:
        return Verifier(scheme, read_secret(endpoint.auth.secret_file), header=endpoint.auth.header,
                        public_url=endpoint.auth.public_url, max_age_seconds=endpoint.auth.max_age_seconds)
    except ValueError as err:
        raise IngestConfigError(str(err)) from None


def load_config(path: str | Path, **overrides: Any) -> GatewayConfig:
    """The config at `path`, paths made relative to its directory; `overrides` replace top-level keys."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise IngestConfigError(f"{path}: larger than 1 MiB")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise IngestConfigError(f"{path}: cannot read: {err.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise IngestConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise IngestConfigError(f"{path}: expected a mapping with `version: 1` at the top")
    data.update(overrides)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()[:10]]
        raise IngestConfigError(f"{path}: invalid gateway config:\n  " + "\n  ".join(lines)) from None
    base = path.resolve().parent
    config.contracts = base / config.contracts
    for ep in config.endpoints.values():
        ep.auth.secret_file = base / ep.auth.secret_file
    for tail in config.tails.values():
        tail.path = base / tail.path
        if tail.position_file is not None:
            tail.position_file = base / tail.position_file
    return config
