"""Print the worked examples of examples/ingest/README.md: each connector's fixture payloads
(tests/fixtures/ingest/<vendor>/) mapped with the endpoint settings of examples/ingest/gateway.yaml, and whether
each status event pauses the client's clocks (pause_statuses) under examples/contracts.yaml.

    python examples/ingest/worked.py > /tmp/worked.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ingest.config import load_config  # noqa: E402
from ingest.connectors import connector  # noqa: E402
from ingest.connectors.base import Context, Reject  # noqa: E402
from monitor.contracts import load_contracts  # noqa: E402
from tests.ingest.helpers import cases, parse  # noqa: E402

ENDPOINT_FOR = {"zendesk": "zendesk", "servicenow": "servicenow", "jira": "jira", "amazon_connect": "amazon-connect",
                "twilio": "twilio", "genesys": "genesys", "alertmanager": "alertmanager", "asterisk": "pbx1"}


def main() -> None:
    config = load_config(ROOT / "examples/ingest/gateway.yaml")
    contracts = load_contracts(config.contracts)
    for vendor, name in ENDPOINT_FOR.items():
        src = config.endpoints.get(name) or config.tails[name]
        module = connector(src.connector)
        print(f"### {vendor} (endpoint `{name}`)\n")
        print("| fixture | client | slamon events | pauses a clock? |\n|---|---|---|---|")
        for path in cases(vendor):
            payload = parse(vendor, path)
            if module.BODY == "lines":
                results = []
                for line in payload.splitlines():
                    fields = module.parse_line(line)
                    client = src.client_for(fields) if fields else None
                    r = module.map_payload(fields, Context(client=client or "?", source=name,
                                                           options=src.parsed_options))
                    results.append((client, r, "`" + '\\|'.join(line.split('|')[:5]) + "`"))
            else:
                client = src.client_for(payload)
                results = [(client, module.map_payload(payload, Context(client=client or "?", source=name,
                                                                        options=src.parsed_options)), path.name)]
            for client, result, label in results:
                if isinstance(result, Reject):
                    print(f"| {label} | {client or '-'} | rejected (422, dead letter): {result.reason} | |")
                    continue
                if not result:
                    print(f"| {label} | {client or '-'} | nothing (acknowledged) | |")
                    continue
                events = ", ".join(_describe(e) for e in result)
                who = client or "(no mapping: 422)"
                print(f"| {label} | {who} | {events} | {_pauses(contracts, client, result)} |")
        print()


def _describe(e: dict) -> str:
    detail = e.get("status") or e.get("priority") or ""
    where = e.get("queue") if e.get("kind") == "call" else e.get("service", "")
    return f"`{e.get('type', e.get('status'))}`" + (f" {detail}" if detail and e["kind"] == "ticket" else "") + \
        (f" @{where}" if where else "")


def _pauses(contracts, client, events) -> str:
    statuses = [e["status"] for e in events if e.get("kind") == "ticket" and e.get("type") == "status"]
    if not statuses or client not in contracts.clients:
        return ""
    pausing = set().union(*(getattr(s, "pause_statuses", ()) for s in contracts.clients[client].slas))
    return ", ".join(f"{s}: {'yes' if s in pausing else 'no'}" for s in statuses)


if __name__ == "__main__":
    main()
