"""The connectors, by name. Each is a module with NAME, BODY, AUTH, Options and map_payload (see base.py)."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "zendesk": "ingest.connectors.zendesk",
    "servicenow": "ingest.connectors.servicenow",
    "jira": "ingest.connectors.jira",
    "amazon_connect": "ingest.connectors.amazon_connect",
    "twilio": "ingest.connectors.twilio",
    "genesys": "ingest.connectors.genesys",
    "alertmanager": "ingest.connectors.alertmanager",
    "generic": "ingest.connectors.generic",
    "asterisk": "ingest.connectors.asterisk",
}


def names() -> list[str]:
    return sorted(MODULES)


def connector(name: str) -> ModuleType:
    """The connector module called `name` (KeyError for an unknown name)."""
    return importlib.import_module(MODULES[name])
