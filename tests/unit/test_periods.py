"""Measurement periods (monitor.periods)."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.contracts import Rolling
from monitor.events import from_us, to_us
from monitor.periods import (
    PeriodWindow,
    period_of,
    periods_between,
    rolling_window,
    split_by_period,
)

H = 3_600_000_000
DAY = 24 * H


def u(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    ("tz", "offset"), [("Europe/Berlin", "+01:00"), ("America/New_York", "-05:00")]
)
def test_month_boundary(tz, offset):
    late_november = period_of(u(f"2026-11-30T23:30{offset}"), "month", tz)
    december = period_of(u(f"2026-12-01T00:00{offset}"), "month", tz)
    assert late_november.label == "2026-11"
    assert december.label == "2026-12"
    assert late_november.end_us == december.start_us == u(f"2026-12-01T00:00{offset}")
    assert period_of(december.start_us - 1, "month", tz) == late_november


def test_month_windows_in_utc_instants():
    # Berlin November: 2026-11-01 00:00 CET = 2026-10-31T23:00Z .. 2026-12-01 00:00 CET = 2026-11-30T23:00Z.
    assert period_of(u("2026-11-15T12:00Z"), "month", "Europe/Berlin") == PeriodWindow(
        "2026-11", u("2026-10-31T23:00Z"), u("2026-11-30T23:00Z")
    )
    # New York November starts in EDT (00:00 EDT = 04:00Z) and ends in EST (00:00 EST = 05:00Z): 30 d + 1 h.
    nov = period_of(u("2026-11-15T12:00Z"), "month", "America/New_York")
    assert (nov.start_us, nov.end_us) == (u("2026-11-01T04:00Z"), u("2026-12-01T05:00Z"))
    assert nov.length_us == 30 * DAY + H
    # An instant that is still November in New York is already December in UTC.
    assert period_of(u("2026-12-01T03:00Z"), "month", "America/New_York").label == "2026-11"
    assert period_of(u("2026-12-01T03:00Z"), "month", "UTC").label == "2026-12"


def test_december_rolls_into_next_year():
    dec = period_of(u("2026-12-31T23:59:59+01:00"), "month", "Europe/Berlin")
    assert dec.label == "2026-12"
    assert dec.end_us == u("2027-01-01T00:00+01:00")
    assert period_of(dec.end_us, "month", "Europe/Berlin").label == "2027-01"


def test_iso_week_53():
    # 2026 starts on a Thursday, so it has 53 ISO weeks; W53 is Mon 2026-12-28 .. Sun 2027-01-03.
    w = period_of(u("2026-12-31T12:00+01:00"), "week", "Europe/Berlin")
    assert w == PeriodWindow("2026-W53", u("2026-12-28T00:00+01:00"), u("2027-01-04T00:00+01:00"))
    assert period_of(u("2027-01-03T23:59+01:00"), "week", "Europe/Berlin").label == "2026-W53"
    assert period_of(u("2027-01-04T00:00+01:00"), "week", "Europe/Berlin").label == "2027-W01"
    # ...and week 1 of 2026 began on Mon 2025-12-29 (label is zero-padded).
    w1 = period_of(u("2025-12-29T00:00+01:00"), "week", "Europe/Berlin")
    assert w1 == PeriodWindow("2026-W01", u("2025-12-29T00:00+01:00"), u("2026-01-05T00:00+01:00"))
    assert period_of(u("2025-12-28T23:59+01:00"), "week", "Europe/Berlin").label == "2025-W52"


def test_week_starts_monday_local_midnight():
    # Mon 2026-11-23 .. Mon 2026-11-30 in New York (EST): W48.
    w = period_of(u("2026-11-26T12:00-05:00"), "week", "America/New_York")
    assert w == PeriodWindow("2026-W48", u("2026-11-23T05:00Z"), u("2026-11-30T05:00Z"))


def test_day_labels_and_bounds():
    d = period_of(u("2026-11-23T00:00-05:00"), "day", "America/New_York")
    assert d == PeriodWindow("2026-11-23", u("2026-11-23T05:00Z"), u("2026-11-24T05:00Z"))
    assert period_of(u("2026-11-23T00:00-05:00") - 1, "day", "America/New_York").label == "2026-11-22"


@pytest.mark.parametrize(
    ("tz", "day", "start", "end", "hours"),
    [
        ("Europe/Berlin", "2026-03-29", "2026-03-28T23:00Z", "2026-03-29T22:00Z", 23),
        ("Europe/Berlin", "2026-10-25", "2026-10-24T22:00Z", "2026-10-25T23:00Z", 25),
        ("America/New_York", "2026-03-08", "2026-03-08T05:00Z", "2026-03-09T04:00Z", 23),
        ("America/New_York", "2026-11-01", "2026-11-01T04:00Z", "2026-11-02T05:00Z", 25),
        ("Europe/Berlin", "2026-06-15", "2026-06-14T22:00Z", "2026-06-15T22:00Z", 24),
        # Santiago springs forward at midnight: 2026-09-06 starts at the gap's end 01:00 -03 = 04:00Z.
        ("America/Santiago", "2026-09-06", "2026-09-06T04:00Z", "2026-09-07T03:00Z", 23),
        # ...and falls back from 24:00 -03 to 23:00 -04 at the end of Saturday 2026-04-04.
        ("America/Santiago", "2026-04-04", "2026-04-04T03:00Z", "2026-04-05T04:00Z", 25),
    ],
)
def test_dst_day_lengths(tz, day, start, end, hours):
    w = period_of(u(f"{day}T12:00Z"), "day", tz)
    assert w == PeriodWindow(day, u(start), u(end))
    assert w.length_us == hours * H


def test_dst_month_lengths():
    # Berlin March 2026 loses an hour, October gains one.
    assert period_of(u("2026-03-15T00:00Z"), "month", "Europe/Berlin").length_us == 31 * DAY - H
    assert period_of(u("2026-10-15T00:00Z"), "month", "Europe/Berlin").length_us == 31 * DAY + H
    assert period_of(u("2026-03-29T12:00Z"), "week", "Europe/Berlin").length_us == 7 * DAY - H


def test_split_by_period_across_a_month_boundary():
    tz = "Europe/Berlin"
    start, end = u("2026-11-30T22:00+01:00"), u("2026-12-01T03:00+01:00")
    pieces = split_by_period(start, end, "month", tz)
    assert [(w.label, a, b) for w, a, b in pieces] == [
        ("2026-11", start, u("2026-12-01T00:00+01:00")),
        ("2026-12", u("2026-12-01T00:00+01:00"), end),
    ]
    assert sum(b - a for _, a, b in pieces) == end - start


def test_split_by_period_many_and_single_pieces():
    tz = "America/New_York"
    start, end = u("2026-10-31T12:00-04:00"), u("2027-01-02T00:00-05:00")
    pieces = split_by_period(start, end, "month", tz)
    assert [w.label for w, _, _ in pieces] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    assert pieces[0][1] == start and pieces[-1][2] == end
    assert all(prev[2] == nxt[1] for prev, nxt in itertools.pairwise(pieces))
    assert sum(b - a for _, a, b in pieces) == end - start
    inside = split_by_period(u("2026-11-10T00:00Z"), u("2026-11-11T00:00Z"), "month", tz)
    assert [(w.label, a, b) for w, a, b in inside] == [
        ("2026-11", u("2026-11-10T00:00Z"), u("2026-11-11T00:00Z"))
    ]
    assert split_by_period(start, start, "month", tz) == []


def test_periods_between_touching_semantics():
    tz = "Europe/Berlin"
    dec1 = u("2026-12-01T00:00+01:00")
    # [.., Dec 1 00:00) does not touch December; [.., Dec 1 00:00 + 1 us) does.
    assert [w.label for w in periods_between(dec1 - H, dec1, "month", tz)] == ["2026-11"]
    assert [w.label for w in periods_between(dec1 - H, dec1 + 1, "month", tz)] == ["2026-11", "2026-12"]
    assert periods_between(dec1, dec1, "month", tz) == []
    days = periods_between(u("2026-03-28T00:00+01:00"), u("2026-03-31T00:00+02:00"), "day", tz)
    assert [w.label for w in days] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [w.length_us // H for w in days] == [24, 23, 24]


def test_rolling():
    at = u("2026-11-30T12:00Z")
    w = rolling_window(at, 30 * DAY)
    assert w == PeriodWindow("rolling-30d", at - 30 * DAY + 1, at + 1)
    assert w.contains(at) and not w.contains(at - 30 * DAY) and w.contains(at - 30 * DAY + 1)
    assert w.length_us == 30 * DAY
    assert rolling_window(at, 5 * 60_000_000).label == "rolling-5m"
    assert rolling_window(at, 90 * 60_000_000).label == "rolling-90m"
    assert rolling_window(at, 1_500_000).label == "rolling-1500000us"
    with pytest.raises(ValueError):
        rolling_window(at, 0)
    with pytest.raises(ValueError, match="rolling_window"):
        period_of(at, Rolling(rolling="30d"), "UTC")
    with pytest.raises(ValueError):
        periods_between(at, at + 1, Rolling(rolling="30d"), "UTC")
    with pytest.raises(ValueError):
        period_of(at, "year", "UTC")


def test_period_of_is_fast_when_cached():
    t = u("2026-11-15T00:00Z")
    instants = [t + i * 7_919_000_000 for i in range(1000)]  # spread over ~3 months
    for x in instants:
        period_of(x, "month", "Europe/Berlin")
    began = time.perf_counter()
    for _ in range(20):
        for x in instants:
            period_of(x, "month", "Europe/Berlin")
    per_call_us = (time.perf_counter() - began) / 20_000 * 1e6
    assert per_call_us < 10  # target < 2 us; loose bound so a loaded CI machine does not flake


ZONES = ["Europe/Berlin", "America/New_York", "America/Santiago", "Asia/Kolkata", "Pacific/Chatham",
         "Australia/Lord_Howe", "UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


@settings(max_examples=400, deadline=None)
@given(st.integers(u("2000-01-01T00:00Z"), u("2099-12-31T00:00Z")), st.sampled_from(["month", "week", "day"]),
       st.sampled_from(ZONES))
def test_windows_contain_their_instant_and_tile_time(t, period, tz):
    w = period_of(t, period, tz)
    assert w.start_us <= t < w.end_us
    assert period_of(w.start_us, period, tz) == w
    assert period_of(w.end_us - 1, period, tz) == w
    assert period_of(w.end_us, period, tz).start_us == w.end_us
    assert period_of(w.start_us - 1, period, tz).end_us == w.start_us
    local = from_us(t).astimezone(ZoneInfo(tz)).date()
    if period == "month":
        assert w.label == f"{local.year:04d}-{local.month:02d}"
    elif period == "day":
        assert w.label == local.isoformat()
    else:
        iso = local.isocalendar()
        assert w.label == f"{iso.year:04d}-W{iso.week:02d}"
