"""Post the connector fixtures (tests/fixtures/ingest/<vendor>/) to a running `slamon ingest`, signed as each
vendor signs: a vendor's traffic for `make demo FEED=gateway`.

    python examples/ingest/post_fixtures.py --config examples/ingest/gateway.yaml [--url http://127.0.0.1:8088]
        [--vendor zendesk --vendor twilio ...] [--speed 60 | --no-shift] [--delay 0.05]

Endpoints are taken from the config by connector (the first endpoint of each connector); secrets from their
secret files.

The fixtures span six hours of one day (2026-03-02 09:00-15:00). Posted as they are, a running worker would
refuse most of them as `late` (more than the client's allowed lateness behind the newest event it has seen),
and posted with one shift for all, several vendors feeding one client would still leave the later vendor's
early events hours behind the earlier vendor's latest ones. So by default they are replayed **live, with time
compressed by --speed** (60: the six hours in six minutes): every time in every body is mapped by
`t -> start + (t - first) / speed`, where `first` is the earliest event time of the fixtures and `start` the
moment the replay starts, and each delivery is posted when its own event time comes, in event-time order
across vendors (each vendor's fixtures keep their file order). Every event then arrives at about its own time,
as from a live vendor: nothing is late whatever else feeds the workers, and durations inside the fixtures (a
ticket's first response, a call's wait) shrink by the same factor. Durations given as numbers rather than times
(Genesys' wrapupDurationMs, Amazon Connect's durations) are not compressed.

Times: ISO 8601 strings, ServiceNow's `YYYY-MM-DD HH:MM:SS`, and the epoch fields of Jira (`timestamp`),
Genesys (`eventTime`), Twilio (`Timestamp`, `TimestampMs`) and the generic fixtures (`at`, epoch seconds).
`--no-shift` posts the fixtures unchanged in file order (a bare gateway, no worker). Prints one line per
delivery: status, endpoint, fixture, answer.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ingest.auth import sign_headers, zendesk_headers  # noqa: E402
from ingest.config import load_config, read_secret  # noqa: E402
from ingest.connectors import connector  # noqa: E402
from tests.ingest.helpers import cases, vendors  # noqa: E402

ISO = re.compile(rb'"(20\d\d-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?"')
EPOCH_MS = re.compile(rb'"(timestamp|eventTime)": (1\d{12})')
EPOCH_S = re.compile(rb'"(at)": (1\d{9})\b')
FORM_EPOCH = re.compile(rb"(Timestamp|TimestampMs)=(1\d{9,12})")


def retime(body: bytes, f: Callable[[datetime], datetime]) -> bytes:
    """`body` with every time it holds (see the module doc) replaced by f(time)."""

    def iso(m: re.Match) -> bytes:
        date, clock, frac, zone = (g.decode() if g else "" for g in m.groups())
        z = "+00:00" if zone in ("", "Z") else (zone if ":" in zone else zone[:3] + ":" + zone[3:])
        dt = f(datetime.fromisoformat(f"{date}T{clock}{frac}{z}"))
        sep = "T" if b"T" in m.group(0) else " "
        text = dt.astimezone(UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (frac or "")
        return b'"' + text.encode() + (b"Z" if zone else b"") + b'"'

    def epoch(value: int, ms: bool) -> int:
        dt = f(datetime.fromtimestamp(value / 1000 if ms else value, UTC))
        return round(dt.timestamp() * 1000) if ms else int(dt.timestamp())

    body = ISO.sub(iso, body)
    body = EPOCH_MS.sub(lambda m: m.group(1).join([b'"', b'": ']) + str(epoch(int(m.group(2)), True)).encode(), body)
    body = EPOCH_S.sub(lambda m: m.group(1).join([b'"', b'": ']) + str(epoch(int(m.group(2)), False)).encode(), body)
    return FORM_EPOCH.sub(lambda m: m.group(1) + b"=" + str(epoch(int(m.group(2)), len(m.group(2)) > 10)).encode(),
                          body)


def shift(body: bytes, delta: timedelta) -> bytes:
    """`body` with every time moved by `delta`."""
    return retime(body, lambda dt: dt + delta)


def times_in(body: bytes) -> list[datetime]:
    """Every time `body` holds."""
    found: list[datetime] = []

    def keep(dt: datetime) -> datetime:
        found.append(dt)
        return dt

    retime(body, keep)
    return found


def event_time(module, ep, body: bytes) -> datetime | None:
    """The newest event time of what `body` maps to with endpoint `ep` (None: it maps to nothing)."""
    from ingest.connectors.base import Context, Reject
    from tests.ingest.helpers import parse_body

    try:
        payload = parse_body(module, body)
        mapped = module.map_payload(payload, Context(client=ep.client_for(payload) or "?", source="replay",
                                                     options=ep.parsed_options))
    except Exception:  # a fixture the connector refuses outright
        return None
    if isinstance(mapped, Reject) or not mapped:
        return None
    return max(datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) for e in mapped)


def schedule(config, only: list[str] | None) -> list[tuple[datetime, str, object, Path, bytes]]:
    """(event time, endpoint name, endpoint, fixture, body) of every fixture to send, in event-time order across
    vendors, each vendor's in file order (a fixture's time: its events' newest, else its newest time, else the
    previous fixture's; never before the previous fixture's)."""
    by_connector: dict[str, tuple[str, object]] = {}
    for name, ep in config.endpoints.items():
        by_connector.setdefault(ep.connector, (name, ep))
    rows = []
    for vendor in only or [v for v in vendors() if v != "asterisk"]:
        if vendor not in by_connector:
            print(f"{vendor}: no endpoint in the config, skipped", file=sys.stderr)
            continue
        name, ep = by_connector[vendor]
        module = connector(ep.connector)
        last: datetime | None = None
        for i, path in enumerate(cases(vendor)):
            body = path.read_bytes()
            at = event_time(module, ep, body) or max(times_in(body), default=None) or last
            last = at if last is None or (at is not None and at > last) else last
            rows.append((last, len(rows), i, name, ep, path, body))
    first = min((r[0] for r in rows if r[0] is not None), default=datetime.now(UTC))
    rows = [(r[0] or first, *r[1:]) for r in rows]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(at, name, ep, path, body) for at, _, _, name, ep, path, body in rows]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError as err:
        return 0, str(err).encode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--url", help="gateway base URL (default: from the config's listen)")
    ap.add_argument("--vendor", action="append", help="fixture folders to send (default: every HTTP connector)")
    ap.add_argument("--speed", type=float, default=60.0,
                    help="event time runs this many times faster than the wall clock (default 60: 6 h in 6 min)")
    ap.add_argument("--no-shift", action="store_true", help="keep the fixtures' 2026-03-02 times, post at once")
    ap.add_argument("--delay", type=float, default=0.05, help="at least this many seconds between deliveries")
    args = ap.parse_args(argv)
    if args.speed <= 0:
        ap.error("--speed must be > 0")
    config = load_config(args.config)
    base = args.url or f"http://{config.host.replace('0.0.0.0', '127.0.0.1')}:{config.port}"
    rows = schedule(config, args.vendor)
    if args.no_shift:
        rows.sort(key=lambda r: (r[1], r[3].name))  # file order per endpoint

    start = datetime.now(UTC)
    first = rows[0][0] if rows else start
    clock0 = time.monotonic()

    def compress(dt: datetime) -> datetime:
        return start + (dt - first) / args.speed

    if not args.no_shift and rows:
        span = (rows[-1][0] - first) / args.speed
        print(f"replaying {len(rows)} deliveries: event times {first:%H:%M}-{rows[-1][0]:%H:%M} of "
              f"{first:%Y-%m-%d} compressed {args.speed:g}x into {span.total_seconds():.0f} s from now",
              file=sys.stderr, flush=True)
    failures = 0
    for at, name, ep, path, raw in rows:
        if not args.no_shift:  # wait for this delivery's (compressed) event time
            due = (at - first).total_seconds() / args.speed
            wait = due - (time.monotonic() - clock0)
            if wait > 0:
                time.sleep(wait)
        module = connector(ep.connector)
        body = raw if args.no_shift else retime(raw, compress)
        scheme = ep.auth.scheme or module.AUTH
        secret = read_secret(ep.auth.secret_file)
        url = f"{base}/hooks/{name}"
        headers = {"Content-Type": "application/x-www-form-urlencoded" if module.BODY == "form"
                   else "application/json"}
        headers.update(sign_headers(scheme, secret, body, ep.auth.public_url or url, header=ep.auth.header))
        if scheme == "zendesk":  # a fresh timestamp, as Zendesk sends
            headers.update(zendesk_headers(secret, body, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
        status, answer = post(url, body, headers)
        failures += status >= 500 or status in (0, 401)
        print(f"{status} {name} {path.name} {answer.decode(errors='replace')[:120]}", flush=True)
        time.sleep(args.delay)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
