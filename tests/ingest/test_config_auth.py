"""Gateway config loading and the auth schemes (no broker)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from ingest.auth import SCHEMES, Verifier, sign_headers, twilio_signature
from ingest.config import load_config, verifier
from ingest.errors import IngestConfigError
from monitor.contracts import load_contracts

ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"id": "x", "n": 1}'
URL = "https://ingest.example.com/hooks/x?tenant=1"


def test_example_gateway_config_loads_and_names_contract_statuses():
    config = load_config(ROOT / "examples/ingest/gateway.yaml")
    contracts = load_contracts(config.contracts)
    pausing = {s for c in contracts.clients.values() for sla in c.slas for s in getattr(sla, "pause_statuses", ())}
    assert set(config.endpoints) >= {"zendesk", "servicenow", "jira", "amazon-connect", "twilio", "genesys",
                                     "alertmanager", "claims-tool"} and "pbx1" in config.tails
    for name, ep in config.endpoints.items():
        for target in ep.parsed_options.statuses.values():
            assert target in pausing, (name, target)


def _write(tmp_path, **over) -> Path:
    (tmp_path / "s").write_text("secret\n")
    data = {"version": 1, "contracts": str(ROOT / "examples/contracts.yaml"),
            "endpoints": {"zd": {"connector": "zendesk", "client": "acme-retail", "auth": {"secret_file": "s"}}}}
    data.update(over)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "g.yaml"


def test_config_errors(tmp_path):
    config = load_config(_write(tmp_path))
    assert verifier(config.endpoints["zd"]).secret == b"secret"  # one trailing newline is not part of it
    with pytest.raises(IngestConfigError, match="unknown connector"):
        load_config(_write(tmp_path, endpoints={"a": {"connector": "freshdesk", "client": "x",
                                                      "auth": {"secret_file": "s"}}}))
    with pytest.raises(IngestConfigError, match="options"):
        load_config(_write(tmp_path, endpoints={"a": {"connector": "zendesk", "client": "x",
                                                      "auth": {"secret_file": "s"}, "options": {"bogus": 1}}}))
    with pytest.raises(IngestConfigError, match="version"):
        load_config(_write(tmp_path, version=2))
    with pytest.raises(IngestConfigError, match="tails"):
        load_config(_write(tmp_path, endpoints={"a": {"connector": "asterisk", "client": "x",
                                                      "auth": {"secret_file": "s"}}}))
    with pytest.raises(IngestConfigError, match="URL path"):
        load_config(_write(tmp_path, endpoints={"a/b": {"connector": "zendesk", "client": "x",
                                                        "auth": {"secret_file": "s"}}}))
    config = load_config(_write(tmp_path, endpoints={"a": {"connector": "zendesk", "client": "x",
                                                           "auth": {"secret_file": "missing"}}}))
    with pytest.raises(IngestConfigError, match="cannot read secret file"):
        verifier(config.endpoints["a"])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_accepts_its_signature_and_nothing_else(scheme):
    secret = b"user:s3cret" if scheme == "basic" else b"s3cret"
    body = BODY if scheme != "twilio" else b"EventType=task.created&TaskSid=WT1&Timestamp=1772445600"
    v = Verifier(scheme, secret, header="X-Key" if scheme == "header" else None)
    good = sign_headers(scheme, secret, body, URL, header="X-Key")
    assert v.verify(good, body, URL)
    assert not v.verify({}, body, URL)
    assert not v.verify(sign_headers(scheme, b"other", body, URL, header="X-Key"), body, URL)
    if scheme not in ("bearer", "basic", "header"):  # signatures cover the body
        assert not v.verify(good, body + b" ", URL)


def test_twilio_signs_the_public_url_and_json_bodies():
    params = [("TaskSid", "WT1"), ("EventType", "task.created")]
    public = "https://ingest.example.com/hooks/twilio"
    sig = twilio_signature(b"tok", public, params).decode()
    body = b"TaskSid=WT1&EventType=task.created"
    v = Verifier("twilio", b"tok", public_url=public)
    assert v.verify({"X-Twilio-Signature": sig}, body, "http://10.0.0.5:8088/hooks/twilio")  # behind a proxy
    assert not Verifier("twilio", b"tok").verify({"X-Twilio-Signature": sig}, body, "http://10.0.0.5/hooks/twilio")
    json_body = b'{"a": 1}'
    url = f"{public}?bodySHA256={hashlib.sha256(json_body).hexdigest()}"
    sig = twilio_signature(b"tok", url, []).decode()
    assert Verifier("twilio", b"tok").verify({"X-Twilio-Signature": sig}, json_body, url)
    assert not Verifier("twilio", b"tok").verify({"X-Twilio-Signature": sig}, b'{"a": 2}', url)


def test_zendesk_max_age():
    v = Verifier("zendesk", b"k", max_age_seconds=300)
    assert not v.verify(sign_headers("zendesk", b"k", BODY, URL), BODY, URL)  # signed 2026-03-02: too old
