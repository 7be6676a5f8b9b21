"""Authentication of webhook deliveries, per endpoint. Every comparison is constant-time (hmac.compare_digest);
secrets come only from files (config `secret_file`), never from the config text or the command line.

| scheme | header | check |
|---|---|---|
| zendesk | X-Zendesk-Webhook-Signature, -Signature-Timestamp | base64(HMAC-SHA256(secret, timestamp + raw body)) |
| hub-signature | X-Hub-Signature (Jira; also X-Hub-Signature-256) | `sha256=` + hex(HMAC-SHA256(secret, raw body)) |
| twilio | X-Twilio-Signature | base64(HMAC-SHA1(auth token, URL + sorted form params as name+value)) |
| bearer | Authorization | `Bearer <secret>` |
| basic | Authorization | `Basic base64(<secret>)`, the secret file holding `user:password` |
| header | the configured `header` | the header's value equals the secret (EventBridge API destinations' API-key auth) |

Twilio JSON bodies: the signed URL carries `bodySHA256` = hex(SHA-256(body)), checked too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime

SCHEMES = ("zendesk", "hub-signature", "twilio", "bearer", "basic", "header")


class Verifier:
    def __init__(self, scheme: str, secret: bytes, *, header: str | None = None, public_url: str | None = None,
                 max_age_seconds: float | None = None) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown auth scheme {scheme!r} (one of {', '.join(SCHEMES)})")
        if scheme == "header" and not header:
            raise ValueError("auth scheme `header` needs `header:` (the header's name)")
        self.scheme = scheme
        self.secret = secret
        self.header = header
        self.public_url = public_url
        self.max_age = max_age_seconds
        if scheme == "bearer":
            self._expected = b"Bearer " + secret
        elif scheme == "basic":
            self._expected = b"Basic " + base64.b64encode(secret)
        else:
            self._expected = secret

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> bool:
        """True when the delivery carries valid credentials for this endpoint. `url`: the URL as requested
        (Twilio signs it; `public_url` replaces scheme, host and path when a proxy rewrote them)."""
        try:
            return getattr(self, "_" + self.scheme.replace("-", "_"))(headers, body, url)
        except (ValueError, TypeError, UnicodeError):
            return False

    @staticmethod
    def _eq(given: str | bytes | None, expected: bytes) -> bool:
        if given is None:
            return False
        if isinstance(given, str):
            given = given.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, expected)

    def _zendesk(self, headers, body, url) -> bool:
        stamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp")
        if stamp is None:
            return False
        digest = hmac.new(self.secret, stamp.encode() + body, hashlib.sha256).digest()
        if not self._eq(headers.get("X-Zendesk-Webhook-Signature"), base64.b64encode(digest)):
            return False
        if self.max_age is not None:
            sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            return abs(time.time() - sent) <= self.max_age
        return True

    def _hub_signature(self, headers, body, url) -> bool:
        expected = b"sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest().encode()
        given = headers.get("X-Hub-Signature") or headers.get("X-Hub-Signature-256")
        return self._eq(given, expected)

    def _twilio(self, headers, body, url) -> bool:
        given = headers.get("X-Twilio-Signature")
        if given is None:
            return False
        signed_url = twilio_url(url, self.public_url)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed_url).query, keep_blank_values=True))
        if "bodySHA256" in query:  # a JSON body: the URL carries its hash
            if not self._eq(query["bodySHA256"], hashlib.sha256(body).hexdigest().encode()):
                return False
            return self._eq(given, twilio_signature(self.secret, signed_url, []))
        params = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        return self._eq(given, twilio_signature(self.secret, signed_url, params))

    def _bearer(self, headers, body, url) -> bool:
        return self._eq(headers.get("Authorization"), self._expected)

    def _basic(self, headers, body, url) -> bool:
        return self._eq(headers.get("Authorization"), self._expected)

    def _header(self, headers, body, url) -> bool:
        return self._eq(headers.get(self.header), self._expected)


def twilio_url(requested: str, public_url: str | None) -> str:
    """The URL Twilio signed: `public_url` (scheme, host and path as configured at Twilio) with the request's
    query string, or the requested URL itself."""
    if not public_url:
        return requested
    query = urllib.parse.urlsplit(requested).query
    return public_url + ("?" + query if query else "")


def twilio_signature(secret: bytes, url: str, params: list[tuple[str, str]]) -> bytes:
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(secret, data.encode("utf-8"), hashlib.sha1).digest())


def zendesk_headers(secret: bytes, body: bytes, stamp: str) -> dict[str, str]:
    """The headers Zendesk would send with `body` (tests, bench and the demo sender sign like the vendor)."""
    digest = hmac.new(secret, stamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def hub_headers(secret: bytes, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}


def sign_headers(scheme: str, secret: bytes, body: bytes, url: str, *, header: str | None = None) -> dict[str, str]:
    """Headers a sender needs for `scheme` (the counterpart of Verifier, for tests, bench and demo)."""
    if scheme == "zendesk":
        return zendesk_headers(secret, body, "2026-03-02T14:00:00Z")
    if scheme == "hub-signature":
        return hub_headers(secret, body)
    if scheme == "twilio":
        params = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        return {"X-Twilio-Signature": twilio_signature(secret, url, params).decode()}
    if scheme == "bearer":
        return {"Authorization": "Bearer " + secret.decode()}
    if scheme == "basic":
        return {"Authorization": "Basic " + base64.b64encode(secret).decode()}
    if scheme == "header":
        return {header or "X-Api-Key": secret.decode()}
    raise ValueError(scheme)
