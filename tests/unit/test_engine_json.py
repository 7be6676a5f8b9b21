"""The compiled worker's SLA-event records are compared byte for byte with the Python worker's (orjson): the JSON
pieces it writes (native/engine/src/json.rs) are orjson's for any float, string and instant."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.compiled_replay import _native
from monitor.events import from_us

pytestmark = pytest.mark.skipif(_native is None, reason="the compiled engine was not built")


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_as_orjson_writes_them(v):
    assert _native.json_float(v) == orjson.dumps(v)


@pytest.mark.parametrize("v", [0.0, -0.0, 1e-5, 1e-6, 9.999999e-6, 1e15, 1e16, 9999999999999998.0, 0.1, 5e-324,
                               1.7976931348623157e308, 123.456, 0.000025, 1.5e16, -2.5e-7, 1234567.125])
def test_the_edges_of_plain_notation(v):
    assert _native.json_float(v) == orjson.dumps(v)


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_strings_as_orjson_writes_them(s):
    assert _native.json_string(s) == orjson.dumps(s)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 4_102_444_800_000_000 - 1))  # 1970 .. 2100, the events' range
def test_instants_as_orjson_writes_them(us):
    assert _native.json_utc(us) == orjson.dumps(from_us(us), option=orjson.OPT_UTC_Z)
