"""Post the connector fixtures (tests/fixtures/ingest/<vendor>/) to a running `slamon ingest`, signed as each
vendor signs, with their times moved so the last one is now: a vendor's traffic for `make demo`.

    python examples/ingest/post_fixtures.py --config examples/ingest/gateway.yaml [--url http://127.0.0.1:8088]
        [--vendor zendesk --vendor twilio ...] [--endpoint-for zendesk=zendesk ...] [--no-shift]

Endpoints are taken from the config by connector (the first endpoint of each connector); secrets from their
secret files. Times: ISO 8601 strings, ServiceNow's `YYYY-MM-DD HH:MM:SS`, and the epoch fields of Jira
(`timestamp`), Genesys (`eventTime`) and Twilio (`Timestamp`, `TimestampMs`) are shifted by the same amount.
Prints one line per delivery: status and answer.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ingest.auth import sign_headers  # noqa: E402
from ingest.config import load_config, read_secret  # noqa: E402
from ingest.connectors import connector  # noqa: E402
from tests.ingest.helpers import cases, vendors  # noqa: E402

FIXTURES_END = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # the last instant of the fixtures
ISO = re.compile(rb'"(20\d\d-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?"')
EPOCH_MS = re.compile(rb'"(timestamp|eventTime)": (1\d{12})')
FORM_EPOCH = re.compile(rb"(Timestamp|TimestampMs)=(1\d{9,12})")


def shift(body: bytes, delta: timedelta) -> bytes:
    def iso(m: re.Match) -> bytes:
        date, clock, frac, zone = (g.decode() if g else "" for g in m.groups())
        zone_ = zone or ""
        z = "+00:00" if zone_ in ("", "Z") else (zone_ if ":" in zone_ else zone_[:3] + ":" + zone_[3:])
        dt = datetime.fromisoformat(f"{date}T{clock}{frac}{z}") + delta
        sep = "T" if b"T" in m.group(0) else " "
        text = dt.astimezone(UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (frac or "")
        return b'"' + text.encode() + (b"Z" if zone_ else b"") + b'"'

    body = ISO.sub(iso, body)
    ms = int(delta.total_seconds() * 1000)
    body = EPOCH_MS.sub(lambda m: m.group(1).join([b'"', b'": ']) + str(int(m.group(2)) + ms).encode(), body)
    return FORM_EPOCH.sub(lambda m: m.group(1) + b"=" + str(
        int(m.group(2)) + (ms if len(m.group(2)) > 10 else ms // 1000)).encode(), body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--url", help="gateway base URL (default: from the config's listen)")
    ap.add_argument("--vendor", action="append", help="fixture folders to send (default: every HTTP connector)")
    ap.add_argument("--no-shift", action="store_true", help="keep the fixtures' 2026-03-02 times")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds between deliveries")
    args = ap.parse_args()
    config = load_config(args.config)
    base = args.url or f"http://{config.host.replace('0.0.0.0', '127.0.0.1')}:{config.port}"
    by_connector = {}
    for name, ep in config.endpoints.items():
        by_connector.setdefault(ep.connector, (name, ep))
    delta = timedelta(0) if args.no_shift else datetime.now(UTC) - FIXTURES_END
    failures = 0
    for vendor in args.vendor or [v for v in vendors() if v != "asterisk"]:
        if vendor not in by_connector:
            print(f"{vendor}: no endpoint in {args.config}, skipped", file=sys.stderr)
            continue
        name, ep = by_connector[vendor]
        module = connector(ep.connector)
        scheme = ep.auth.scheme or module.AUTH
        secret = read_secret(ep.auth.secret_file)
        url = f"{base}/hooks/{name}"
        signed_url = ep.auth.public_url or url
        for path in cases(vendor):
            body = shift(path.read_bytes(), delta)
            headers = {"Content-Type": "application/x-www-form-urlencoded" if module.BODY == "form"
                       else "application/json"}
            headers.update(sign_headers(scheme, secret, body, signed_url, header=ep.auth.header))
            if scheme == "zendesk":  # a fresh timestamp, as Zendesk sends
                from ingest.auth import zendesk_headers

                headers.update(zendesk_headers(secret, body, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
            req = urllib.request.Request(url, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, answer = resp.status, resp.read()
            except urllib.error.HTTPError as err:
                status, answer = err.code, err.read()
            except OSError as err:
                status, answer = 0, str(err).encode()
            failures += status >= 500 or status in (0, 401)
            print(f"{status} {name} {path.name} {answer.decode(errors='replace')[:120]}")
            time.sleep(args.delay)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
