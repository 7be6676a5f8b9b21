"""Access to the worker's web server (faust/aiohttp): bind address, optional HTTP basic auth and TLS.

    web = web_server_settings(settings)    # keyword arguments of faust.App: bind, port, TLS, no table views
    guard = BasicAuthGuard.from_settings(settings)
    if not guard.allows(request.headers.get("Authorization")): ...  # 401 with guard.challenge_headers

Basic auth protects `/metrics`; `/healthz` stays open for liveness/readiness probes (kubelet probes cannot send
credentials without a custom header) and tells nothing secret: partitions, offsets, lag, checkpoint counts, the
group membership; the names of the clients a worker owns only to a request with the /metrics credentials.
faust's own `/table` (it serves table *data*: the engine snapshots) and `/router` views are switched off, so
nothing else on the port needs a password. Without TLS the password crosses the network in clear: set
`metrics_tls_certfile`/`metrics_tls_keyfile` whenever the bind address is not loopback.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import socket
import ssl
from typing import Any

from monitor.errors import SlamonError
from streams.config import Settings

REALM = "slamon"


class BasicAuthGuard:
    """Checks an `Authorization: Basic ...` header against one user (constant-time comparisons)."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self._expected = None if username is None or password is None else (username.encode(), password.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> BasicAuthGuard:
        password = settings.metrics_password.get_secret_value() if settings.metrics_password else None
        return cls(settings.metrics_username, password)

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, authorization: str | None) -> bool:
        if self._expected is None:
            return True
        user, password = _decode_basic(authorization)
        # compare both, always: the time taken must not tell which one was wrong
        user_ok = hmac.compare_digest(user, self._expected[0])
        password_ok = hmac.compare_digest(password, self._expected[1])
        return user_ok and password_ok

    @property
    def challenge_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}


def _decode_basic(authorization: str | None) -> tuple[bytes, bytes]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return b"", b""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b"", b""
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else (b"", b"")


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context of the web server (None: plain http). Fails at start on an unreadable certificate or key."""
    if settings.metrics_tls_certfile is None or settings.metrics_tls_keyfile is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(settings.metrics_tls_certfile), str(settings.metrics_tls_keyfile))
    return ctx


def web_server_settings(settings: Settings) -> dict[str, Any]:
    """faust.App keyword arguments of the web server."""
    return {
        "web_enabled": True,
        "web_bind": settings.metrics_host,
        "web_host": settings.metrics_host,
        "web_port": settings.metrics_port,
        "web_ssl_context": server_ssl_context(settings),
        # faust's /table views serve table contents and /router the cluster's worker
        # URLs, with no authentication; /metrics and /healthz are all the worker needs
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
    }


class MetricsBindError(SlamonError):
    """The metrics address is taken (another worker on this host) or cannot be bound."""


def check_bind(settings: Settings) -> None:
    """Fail at once, with what to do, when the metrics address cannot be bound: faust would stop the worker with
    a traceback after connecting to Kafka. Two workers on one host need distinct `metrics_bind` ports."""
    host, port = settings.metrics_host, settings.metrics_port
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp: TIME_WAIT is no conflict
            sock.bind(address)
    except OSError as err:
        raise MetricsBindError(
            f"cannot serve /metrics on {settings.metrics_bind}: {err.strerror or err}",
            hint="another worker on this host probably uses that port: give each worker its own "
                 "SLAMON_METRICS_BIND (and SLAMON_DATA_DIR), e.g. 127.0.0.1:9465 (docs/operations.md)") from None
