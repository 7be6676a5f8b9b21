"""Fixtures of the ingest connectors: tests/fixtures/ingest/<vendor>/

    NN-case.json (or .txt / .form)   a payload exactly as the vendor sends it (Twilio: form-encoded; Asterisk:
                                     queue_log lines)
    endpoint.yaml                    the endpoint (connector, client, options) the cases are mapped with
    expected.json                    case -> the spec events it maps to, or {"reject": "<part of the reason>"}

`python -m tests.ingest.helpers regen VENDOR` rewrites expected.json from the current mappers: review the diff.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from ingest.config import Source
from ingest.connectors import connector
from ingest.connectors.base import Context, Reject

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def vendors() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if (p / "endpoint.yaml").exists())


def endpoint(vendor: str) -> dict:
    return yaml.safe_load((FIXTURES / vendor / "endpoint.yaml").read_text())


def source(vendor: str) -> Source:
    ep = endpoint(vendor)
    ep.pop("auth", None)
    return Source.model_validate(ep)


def cases(vendor: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / vendor).iterdir() if p.name[:2].isdigit())


def parse(vendor: str, path: Path) -> Any:
    return parse_body(connector(endpoint(vendor)["connector"]), path.read_bytes())


def parse_body(module, body: bytes) -> Any:
    """A body as the connector `module` receives it (JSON, form fields or queue_log text)."""
    if module.BODY == "form":
        import urllib.parse

        return dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    if module.BODY == "lines":
        return body.decode()
    return orjson.loads(body)


def map_case(vendor: str, path: Path, name: str | None = None):
    src = source(vendor)
    module = connector(src.connector)
    payload = parse(vendor, path)
    if module.BODY == "lines":
        return module.map_lines(payload, src, name or vendor)
    client = src.client_for(payload)
    return module.map_payload(payload, Context(client=client or "?", source=name or vendor,
                                               options=src.parsed_options))


def expected(vendor: str) -> dict:
    return orjson.loads((FIXTURES / vendor / "expected.json").read_bytes())


def regen(vendor: str) -> None:
    out = {}
    for path in cases(vendor):
        result = map_case(vendor, path)
        out[path.name] = {"reject": result.reason} if isinstance(result, Reject) else result
    (FIXTURES / vendor / "expected.json").write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["regen"]:
        for v in sys.argv[2:]:
            regen(v)
