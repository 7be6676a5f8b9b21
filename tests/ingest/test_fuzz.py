"""Fuzz every mapper (hypothesis): arbitrary JSON, and the fixtures with any value replaced by arbitrary JSON,
never make a connector raise; it maps (to events the decoder accepts or rejects, never a crash) or rejects."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import Source
from ingest.connectors import connector, names
from ingest.connectors.base import Context, Reject
from tests.ingest.helpers import cases, endpoint, parse, vendors

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True) | st.text(max_size=30)
    | st.sampled_from(["2026-03-02T09:00:00Z", "2026-03-02 09:00:00", "1772442000000", "solved", "closed", "6",
                       "QUEUED", "DISCONNECTED", "firing", "resolved", "ENTERQUEUE"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(name: str, payload, options=None) -> None:
    module = connector(name)
    if options is None:
        fixture = next((v for v in vendors() if endpoint(v)["connector"] == name), None)
        options = module.Options.model_validate(endpoint(fixture).get("options") or {}) if fixture else \
            module.Options()
    opts = options
    if module.BODY == "lines":
        src = Source(connector=name, client="acme", options={})
        result = module.map_lines(payload if isinstance(payload, str) else json.dumps(payload), src, "fz")
        results = [result]
    else:
        results = [module.map_payload(payload, Context(client="acme", source="fz", options=opts))]
    for r in results:
        if isinstance(r, Reject):
            assert isinstance(r.reason, str) and r.reason
        else:
            assert isinstance(r, list)
            for event in r:
                assert isinstance(event, dict) and event["client"] == "acme"
                orjson.dumps(event)


@FUZZ
@given(name=st.sampled_from(names()), payload=JSON)
def test_arbitrary_json_never_raises(name, payload):
    _check(name, payload)


def _mutations(obj, draw_value):
    """Every path in obj; used to replace one value with arbitrary JSON."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(obj, ())
    return paths


def _replace(obj, path, value):
    if not path:
        return value
    copy = obj.copy() if isinstance(obj, (dict, list)) else obj
    copy[path[0]] = _replace(obj[path[0]], path[1:], value)
    return copy


FIXTURE_CASES = [(v, p) for v in vendors() for p in cases(v)]


@FUZZ
@given(data=st.data())
def test_fixtures_with_one_value_replaced_never_raise(data):
    vendor, path = data.draw(st.sampled_from(FIXTURE_CASES))
    ep = endpoint(vendor)
    payload = parse(vendor, path)
    options = connector(ep["connector"]).Options.model_validate(ep.get("options") or {})
    if isinstance(payload, str):  # queue_log lines: replace one field
        lines = payload.splitlines() or [""]
        i = data.draw(st.integers(0, len(lines) - 1))
        fields = lines[i].split("|")
        j = data.draw(st.integers(0, len(fields) - 1))
        fields[j] = data.draw(st.text(max_size=12))
        lines[i] = "|".join(fields)
        _check(ep["connector"], "\n".join(lines), options)
        return
    paths = _mutations(payload, None)
    where = data.draw(st.sampled_from(paths))
    _check(ep["connector"], _replace(payload, where, data.draw(JSON)), options)
