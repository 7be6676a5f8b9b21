"""A Kafka broker with SASL/SCRAM and TLS listeners, and the certificates for it, made at test time.

    pki = TestPKI(tmpdir).create()                  # CA, server (127.0.0.1/localhost) and client certificates
    broker = SecureKafkaBroker(tmpdir / "kafka", pki).start()
    broker.bootstrap_for("SASL_SSL")               # "127.0.0.1:PORT" of that listener
    broker.client_settings("SASL_SSL")             # KafkaSettings fields for it (SCRAM-SHA-512, CA file)

One broker serves PLAINTEXT (as `KafkaBroker`), SASL_PLAINTEXT, SSL (client certificate required) and
SASL_SSL, so a test module needs a single broker start for every protocol. The SCRAM user is created when the
storage is formatted (deploy/kafka/kafka.sh, SLAMON_KAFKA_SCRAM_USERS_FILE); its password is random per broker
and lives only in this object and a 0600 file next to the certificates (not in the broker's dir, which the
tests search for it). Certificates come from the `openssl` CLI
(no Python crypto dependency), are valid for a day and are never committed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.procs import KafkaBroker, ServiceError, free_port

SECURE_PROTOCOLS = ("SASL_PLAINTEXT", "SSL", "SASL_SSL")
SCRAM_USER = "slamon"


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise ServiceError(f"openssl {args[0]} failed: {r.stderr[-2000:]}")


class TestPKI:
    """A throw-away CA and the certificates it signs (PEM files in `directory`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"

    @staticmethod
    def missing() -> str | None:
        return None if shutil.which("openssl") else "openssl not found"

    def create(self) -> TestPKI:
        self.dir.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key.name, "-out",
                 self.ca_cert.name, "-days", "1", "-subj", "/CN=slamon test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                 cwd=self.dir)
        self.issue("server", san="IP:127.0.0.1,DNS:localhost", usage="serverAuth")
        self.issue("client", san="DNS:slamon-client", usage="clientAuth")
        return self

    def issue(self, name: str, *, san: str, usage: str) -> tuple[Path, Path]:
        """`name`.crt and `name`.key (unencrypted PKCS#8) signed by the CA; also `name`.pem = key + cert."""
        key, csr, crt = f"{name}.key", f"{name}.csr", f"{name}.crt"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
                 cwd=self.dir)
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert.name, "-CAkey", self.ca_key.name,
                 "-CAcreateserial", "-days", "1", "-out", crt, "-extfile", ext.name, cwd=self.dir)
        (self.dir / f"{name}.pem").write_text((self.dir / key).read_text() + (self.dir / crt).read_text())
        for path in (self.dir / key, self.dir / f"{name}.pem", self.ca_key):
            path.chmod(0o600)
        return self.dir / crt, self.dir / key

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


class SecureKafkaBroker(KafkaBroker):
    """`KafkaBroker` plus SASL_PLAINTEXT, SSL (client certificate required) and SASL_SSL listeners."""

    def __init__(self, workdir: str | os.PathLike, pki: TestPKI, *, start_timeout: float = 180.0,
                 env: Mapping[str, str] | None = None) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.scram_user = SCRAM_USER
        self.scram_password = secrets.token_urlsafe(18)
        users = pki.dir / f"scram-users-{workdir.name}"  # outside the broker's dir: it holds no secret
        users.touch(mode=0o600)
        users.write_text(f"{self.scram_user}:{self.scram_password}\n")
        self.listener_ports = {proto: free_port() for proto in SECURE_PROTOCOLS}
        secure_env = {f"SLAMON_KAFKA_{proto}_PORT": str(port) for proto, port in self.listener_ports.items()}
        secure_env.update({
            "SLAMON_KAFKA_SSL_KEYSTORE_PEM": str(pki.dir / "server.pem"),
            "SLAMON_KAFKA_SSL_TRUSTSTORE_PEM": str(pki.ca_cert),
            "SLAMON_KAFKA_SSL_CLIENT_AUTH": "required",
            "SLAMON_KAFKA_SCRAM_USERS_FILE": str(users),
        })
        super().__init__(workdir, start_timeout=start_timeout, env={**secure_env, **(env or {})})

    def start(self, tmpdir: str | os.PathLike | None = None) -> SecureKafkaBroker:
        super().start(tmpdir)
        self._check_listeners()
        return self

    def _check_listeners(self) -> None:
        """kafka.sh records the listeners it configured: they must be the ports asked for."""
        assert self.workdir is not None
        written = dict(line.split() for line in (self.workdir / "listeners").read_text().splitlines())
        wanted = {proto: f"127.0.0.1:{port}" for proto, port in self.listener_ports.items()}
        if written != wanted:
            raise ServiceError(f"broker listeners {written}, expected {wanted}")

    def bootstrap_for(self, protocol: str) -> str:
        return self.bootstrap if protocol == "PLAINTEXT" else f"127.0.0.1:{self.listener_ports[protocol]}"

    def client_settings(self, protocol: str, *, password: str | None = None) -> dict[str, Any]:
        """`KafkaSettings` fields to reach the `protocol` listener as the SCRAM user (SSL: client cert)."""
        cfg: dict[str, Any] = {"bootstrap_servers": self.bootstrap_for(protocol), "security_protocol": protocol}
        if protocol.startswith("SASL"):
            cfg.update(sasl_mechanism="SCRAM-SHA-512", sasl_username=self.scram_user,
                       sasl_password=self.scram_password if password is None else password)
        if protocol.endswith("SSL"):
            cfg["ssl_cafile"] = str(self.pki.ca_cert)
        if protocol == "SSL":
            cfg.update(ssl_certfile=str(self.pki.cert("client")), ssl_keyfile=str(self.pki.key("client")))
        return cfg

    def client_env(self, protocol: str, *, password: str | None = None) -> dict[str, str]:
        """The same as `SLAMON_KAFKA__*` environment variables (for worker / CLI subprocesses)."""
        return {f"SLAMON_KAFKA__{k.upper()}": str(v) for k, v in self.client_settings(protocol,
                                                                                      password=password).items()}
