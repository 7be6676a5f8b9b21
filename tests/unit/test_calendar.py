"""Business-time arithmetic (monitor.calendar). Expected instants are worked out by hand in the comments."""

from __future__ import annotations

import functools
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.calendar import (
    DAY_US,
    AlwaysOpen,
    BusinessCalendar,
    calendar_for,
)
from monitor.contracts import Calendar
from monitor.events import from_us, to_us

H = 3_600_000_000
M = 60_000_000
WEEKDAYS_8_18 = {d: ((8 * 60, 18 * 60),) for d in range(5)}  # Mon-Fri 08:00-18:00
LUNCH = {d: ((9 * 60, 12 * 60), (13 * 60, 17 * 60)) for d in range(5)}  # Mon-Fri 09-12, 13-17


def u(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


@pytest.fixture(scope="module")
def berlin() -> BusinessCalendar:
    return BusinessCalendar("Europe/Berlin", WEEKDAYS_8_18, "DE")


@pytest.fixture(scope="module")
def new_york() -> BusinessCalendar:
    return BusinessCalendar("America/New_York", LUNCH, "US", "NY")


# ------------------------------------------------------------------------------------------- basics


def test_weekend_is_closed(berlin):
    # Sat 2026-11-28 00:00 .. Mon 2026-11-30 00:00 (CET): nothing is open.
    assert berlin.elapsed_us(u("2026-11-28T00:00+01:00"), u("2026-11-30T00:00+01:00")) == 0
    # Fri 00:00 .. Tue 00:00: Fri 10 h + Mon 10 h.
    assert berlin.elapsed_us(u("2026-11-27T00:00+01:00"), u("2026-12-01T00:00+01:00")) == 20 * H
    assert not berlin.is_open(u("2026-11-28T12:00+01:00"))
    assert berlin.open_spans(date(2026, 11, 28)) == ()
    assert berlin.open_spans(date(2026, 11, 27)) == ((u("2026-11-27T07:00Z"), u("2026-11-27T17:00Z")),)


def test_friday_evening_ticket_lands_monday(berlin):
    # Fri 2026-11-27 16:00 CET + 4 business hours: Fri 16-18 (2 h), Mon 2026-11-30 08-10 (2 h)
    # -> Mon 10:00 CET = 09:00Z.
    start = u("2026-11-27T16:00+01:00")
    deadline = berlin.add_us(start, 4 * H)
    assert deadline == u("2026-11-30T10:00+01:00") == u("2026-11-30T09:00Z")
    assert berlin.elapsed_us(start, deadline) == 4 * H


def test_deadline_at_end_of_span_is_not_pushed_to_next_opening(berlin):
    # Fri 16:00 + 2 h reaches the target at Fri 18:00 (the earliest instant), not Mon 08:00.
    assert berlin.add_us(u("2026-11-27T16:00+01:00"), 2 * H) == u("2026-11-27T18:00+01:00")
    assert berlin.add_us(u("2026-11-27T16:00+01:00"), 2 * H + 1) == u("2026-11-30T08:00+01:00") + 1


def test_is_open_is_half_open(berlin):
    assert berlin.is_open(u("2026-11-27T08:00+01:00"))
    assert berlin.is_open(u("2026-11-27T18:00+01:00") - 1)
    assert not berlin.is_open(u("2026-11-27T18:00+01:00"))
    assert not berlin.is_open(u("2026-11-27T08:00+01:00") - 1)


def test_lunch_break(new_york):
    # Tue 2026-11-24 11:00 EST + 2 h: 11-12 (1 h), lunch 12-13 closed, 13-14 (1 h) -> 14:00 EST = 19:00Z.
    start = u("2026-11-24T11:00-05:00")
    assert new_york.add_us(start, 2 * H) == u("2026-11-24T14:00-05:00") == u("2026-11-24T19:00Z")
    # A ticket created during lunch starts counting at 13:00: 12:30 + 30 min -> 13:30.
    assert new_york.add_us(u("2026-11-24T12:30-05:00"), 30 * M) == u("2026-11-24T13:30-05:00")
    assert not new_york.is_open(u("2026-11-24T12:30-05:00"))
    # One full day is 3 h + 4 h.
    assert new_york.elapsed_us(u("2026-11-24T00:00-05:00"), u("2026-11-25T00:00-05:00")) == 7 * H
    assert new_york.open_spans(date(2026, 11, 24)) == (
        (u("2026-11-24T14:00Z"), u("2026-11-24T17:00Z")),
        (u("2026-11-24T18:00Z"), u("2026-11-24T22:00Z")),
    )


def test_ticket_created_during_closed_hours(berlin):
    # Sat 2026-11-28 10:00 + 1 h: nothing until Mon 08:00 CET -> Mon 09:00 CET.
    assert berlin.add_us(u("2026-11-28T10:00+01:00"), 1 * H) == u("2026-11-30T09:00+01:00")
    # Tue 2026-12-01 06:00 (before opening) + 30 min -> 08:30.
    assert berlin.add_us(u("2026-12-01T06:00+01:00"), 30 * M) == u("2026-12-01T08:30+01:00")
    assert berlin.elapsed_us(u("2026-12-01T06:00+01:00"), u("2026-12-01T08:00+01:00")) == 0


# ----------------------------------------------------------------------------------------- holidays


def test_country_holidays_de_christmas():
    # Mon-Sat 08-18 so that Sat 2026-12-26 would be open were it not a holiday.
    weekly = {d: ((480, 1080),) for d in range(6)}
    cal = BusinessCalendar("Europe/Berlin", weekly, "DE")
    plain = BusinessCalendar("Europe/Berlin", weekly)
    assert cal.is_holiday(date(2026, 12, 25)) and cal.is_holiday(date(2026, 12, 26))
    assert not cal.is_holiday(date(2026, 12, 24))  # Heiligabend is not a public holiday
    assert cal.open_spans(date(2026, 12, 25)) == cal.open_spans(date(2026, 12, 26)) == ()
    # Thu 2026-12-24 17:00 + 4 h: Thu 17-18 (1 h); Fri 25 + Sat 26 holidays; Sun closed;
    # Mon 2026-12-28 08-11 (3 h) -> 11:00 CET = 10:00Z.
    start = u("2026-12-24T17:00+01:00")
    assert cal.add_us(start, 4 * H) == u("2026-12-28T11:00+01:00") == u("2026-12-28T10:00Z")
    # Without holidays: Fri 25 08-11.
    assert plain.add_us(start, 4 * H) == u("2026-12-25T11:00+01:00")


def test_country_holiday_us_thanksgiving(new_york):
    assert new_york.is_holiday(date(2026, 11, 26))
    assert not new_york.is_holiday(date(2026, 11, 27))
    # Wed 2026-11-25 16:00 EST + 3 h: Wed 16-17 (1 h); Thu 26 Thanksgiving; Fri 27 09-11 (2 h)
    # -> Fri 11:00 EST = 16:00Z.
    assert new_york.add_us(u("2026-11-25T16:00-05:00"), 3 * H) == u("2026-11-27T16:00Z")


def test_explicit_holiday_dates():
    cal = BusinessCalendar("Europe/Berlin", WEEKDAYS_8_18, holiday_dates=frozenset({date(2026, 11, 30)}))
    # Fri 2026-11-27 16:00 + 4 h: Fri 16-18; Mon 30 is a company holiday; Tue 2026-12-01 08-10.
    assert cal.add_us(u("2026-11-27T16:00+01:00"), 4 * H) == u("2026-12-01T10:00+01:00")
    assert cal.open_spans(date(2026, 11, 30)) == ()


def test_country_holidays_are_fetched_for_any_year():
    cal = BusinessCalendar("Europe/Berlin", {}, "DE")  # 24x7 except holidays
    assert cal.open_spans(date(2031, 12, 25)) == ()
    assert cal.open_spans(date(2019, 10, 3)) == ()
    assert cal.elapsed_us(u("2019-10-03T00:00+02:00"), u("2019-10-04T00:00+02:00")) == 0


def test_observed_holidays_follow_the_library_default():
    # US 2026-07-04 is a Saturday; the federal holiday is observed on Fri 2026-07-03.
    cal = BusinessCalendar("America/New_York", LUNCH, "US")
    assert cal.open_spans(date(2026, 7, 3)) == ()


# ---------------------------------------------------------------------------------------------- DST


def test_dst_berlin_spring_forward():
    always = BusinessCalendar("Europe/Berlin", {})
    # 2026-03-29: 00:00 CET = 2026-03-28T23:00Z; next midnight 00:00 CEST = 2026-03-29T22:00Z -> 23 h.
    assert always.open_spans(date(2026, 3, 29)) == ((u("2026-03-28T23:00Z"), u("2026-03-29T22:00Z")),)
    assert always.elapsed_us(u("2026-03-29T00:00+01:00"), u("2026-03-30T00:00+02:00")) == 23 * H
    # 08:00-18:00 every day: still 10 h on the DST day (08:00 CEST = 06:00Z .. 18:00 CEST = 16:00Z).
    daily = BusinessCalendar("Europe/Berlin", {d: ((480, 1080),) for d in range(7)})
    assert daily.open_spans(date(2026, 3, 29)) == ((u("2026-03-29T06:00Z"), u("2026-03-29T16:00Z")),)
    assert daily.open_spans(date(2026, 3, 28)) == ((u("2026-03-28T07:00Z"), u("2026-03-28T17:00Z")),)
    # Mon-Fri: Fri 2026-03-27 17:00 CET (16:00Z) + 2 h: Fri 17-18 (1 h), Mon 08-09 CEST
    # -> 2026-03-30T07:00Z although 63 h of wall-clock time passed.
    cal = BusinessCalendar("Europe/Berlin", WEEKDAYS_8_18)
    assert cal.add_us(u("2026-03-27T17:00+01:00"), 2 * H) == u("2026-03-30T07:00Z")


def test_dst_berlin_fall_back():
    always = BusinessCalendar("Europe/Berlin", {})
    # 2026-10-25: 00:00 CEST = 2026-10-24T22:00Z; next midnight 00:00 CET = 2026-10-25T23:00Z -> 25 h.
    assert always.open_spans(date(2026, 10, 25)) == ((u("2026-10-24T22:00Z"), u("2026-10-25T23:00Z")),)
    # Only Sundays, all day: Sat 2026-10-24 12:00 + 25 h uses the whole of Sunday and ends at
    # Mon 00:00 CET = 2026-10-25T23:00Z; one more microsecond waits for the next Sunday
    # 2026-11-01 00:00 CET = 2026-10-31T23:00Z.
    sundays = BusinessCalendar("Europe/Berlin", {6: ((0, 1440),)})
    start = u("2026-10-24T12:00+02:00")
    assert sundays.add_us(start, 25 * H) == u("2026-10-25T23:00Z")
    assert sundays.add_us(start, 25 * H + 1) == u("2026-10-31T23:00Z") + 1
    daily = BusinessCalendar("Europe/Berlin", {d: ((480, 1080),) for d in range(7)})
    assert daily.elapsed_us(u("2026-10-25T00:00+02:00"), u("2026-10-26T00:00+01:00")) == 10 * H


def test_dst_new_york():
    always = BusinessCalendar("America/New_York", {})
    # 2026-03-08: 00:00 EST = 05:00Z .. 2026-03-09 00:00 EDT = 04:00Z -> 23 h.
    assert always.open_spans(date(2026, 3, 8)) == ((u("2026-03-08T05:00Z"), u("2026-03-09T04:00Z")),)
    # 2026-11-01: 00:00 EDT = 04:00Z .. 2026-11-02 00:00 EST = 05:00Z -> 25 h.
    assert always.open_spans(date(2026, 11, 1)) == ((u("2026-11-01T04:00Z"), u("2026-11-02T05:00Z")),)
    # Sunday 09-17: 2026-03-01 (EST) 14:00Z-22:00Z; 2026-03-08 (EDT) 13:00Z-21:00Z; 8 h each.
    sundays = BusinessCalendar("America/New_York", {6: ((540, 1020),)})
    assert sundays.open_spans(date(2026, 3, 1)) == ((u("2026-03-01T14:00Z"), u("2026-03-01T22:00Z")),)
    assert sundays.open_spans(date(2026, 3, 8)) == ((u("2026-03-08T13:00Z"), u("2026-03-08T21:00Z")),)
    # Sun 2026-03-01 12:00 EST + 10 h: 12-17 EST (5 h), then 2026-03-08 09-14 EDT (5 h) -> 18:00Z.
    assert sundays.add_us(u("2026-03-01T12:00-05:00"), 10 * H) == u("2026-03-08T18:00Z")
    # Sun 2026-11-01 (EST after 02:00): 09-17 EST = 14:00Z-22:00Z.
    assert sundays.open_spans(date(2026, 11, 1)) == ((u("2026-11-01T14:00Z"), u("2026-11-01T22:00Z")),)


def test_boundaries_inside_the_gap_and_the_repeated_hour():
    # Berlin, Sundays 02:30-05:00.
    cal = BusinessCalendar("Europe/Berlin", {6: ((150, 300),)})
    # Spring 2026-03-29: 02:30 does not exist -> the gap's end, 03:00 CEST = 01:00Z; 05:00 CEST = 03:00Z.
    assert cal.open_spans(date(2026, 3, 29)) == ((u("2026-03-29T01:00Z"), u("2026-03-29T03:00Z")),)
    # Fall 2026-10-25: first 02:30 (CEST) = 00:30Z, the clock falls back to 02:00 CET at 01:00Z and reads
    # 02:00-02:30 (outside the span) until 01:30Z; 05:00 CET = 04:00Z. Open 0.5 h + 2.5 h = 3 h.
    assert cal.open_spans(date(2026, 10, 25)) == (
        (u("2026-10-25T00:30Z"), u("2026-10-25T01:00Z")),
        (u("2026-10-25T01:30Z"), u("2026-10-25T04:00Z")),
    )
    assert not cal.is_open(u("2026-10-25T01:15Z"))
    # New York, Sundays 01:30-03:00.
    ny = BusinessCalendar("America/New_York", {6: ((90, 180),)})
    # Spring 2026-03-08: 01:30 EST = 06:30Z; 02:00-03:00 is the gap, so 03:00 -> its end, 07:00Z.
    assert ny.open_spans(date(2026, 3, 8)) == ((u("2026-03-08T06:30Z"), u("2026-03-08T07:00Z")),)
    # Fall 2026-11-01: 01:30 EDT = 05:30Z; 01:00 EST at 06:00Z, 01:30 EST at 06:30Z; 03:00 EST = 08:00Z.
    assert ny.open_spans(date(2026, 11, 1)) == (
        (u("2026-11-01T05:30Z"), u("2026-11-01T06:00Z")),
        (u("2026-11-01T06:30Z"), u("2026-11-01T08:00Z")),
    )
    # A span ending in the repeated hour ends at its second occurrence. 00:00-01:30: 00:00 EDT = 04:00Z ..
    # 01:30 EDT = 05:30Z; the clock reads 01:30-02:00 EDT (outside) until 06:00Z, then 01:00 EST again,
    # and the second 01:30 (EST) is 06:30Z. Open 1.5 h + 0.5 h = 2 h.
    early = BusinessCalendar("America/New_York", {6: ((0, 90),)})
    assert early.open_spans(date(2026, 11, 1)) == (
        (u("2026-11-01T04:00Z"), u("2026-11-01T05:30Z")),
        (u("2026-11-01T06:00Z"), u("2026-11-01T06:30Z")),
    )


def test_midnight_dst_transition_santiago():
    # America/Santiago springs forward at 00:00 (-04) -> 01:00 (-03) on 2026-09-06: Sunday starts at
    # the gap's end, 04:00Z, and lasts 23 h until 2026-09-07 00:00 -03 = 03:00Z.
    always = BusinessCalendar("America/Santiago", {})
    assert always.open_spans(date(2026, 9, 6)) == ((u("2026-09-06T04:00Z"), u("2026-09-07T03:00Z")),)
    assert always.open_spans(date(2026, 9, 5)) == ((u("2026-09-05T04:00Z"), u("2026-09-06T04:00Z")),)
    # It falls back at 24:00 (-03) -> 23:00 (-04) on Sat 2026-04-04: Saturday is 25 h.
    assert always.open_spans(date(2026, 4, 4)) == ((u("2026-04-04T03:00Z"), u("2026-04-05T04:00Z")),)


def test_span_ending_at_midnight():
    # Sat 20:00-24:00 and Sun 00:00-02:00 form one stretch across midnight.
    cal = BusinessCalendar("Europe/Berlin", {5: ((1200, 1440),), 6: ((0, 120),)})
    start = u("2026-11-28T22:00+01:00")
    # Sat 22-24 (2 h) + Sun 00-01 (1 h) -> Sun 01:00 CET = 2026-11-29T00:00Z.
    assert cal.add_us(start, 3 * H) == u("2026-11-29T01:00+01:00")
    # Exactly 2 h is reached at Sat 24:00 = Sun 00:00 CET = 2026-11-28T23:00Z.
    assert cal.add_us(start, 2 * H) == u("2026-11-28T23:00Z")
    assert cal.is_open(u("2026-11-29T00:00+01:00"))
    assert cal.open_spans(date(2026, 11, 28)) == ((u("2026-11-28T19:00Z"), u("2026-11-28T23:00Z")),)
    assert cal.elapsed_us(u("2026-11-28T00:00+01:00"), u("2026-11-30T00:00+01:00")) == 6 * H


# ------------------------------------------------------------------------------- edge cases, API


def test_zero_and_negative_amounts(berlin):
    t = u("2026-11-28T10:00+01:00")  # closed
    assert berlin.add_us(t, 0) == t
    assert berlin.elapsed_us(t, t) == 0
    assert berlin.elapsed_us(t + 5, t) == 0
    with pytest.raises(ValueError):
        berlin.add_us(t, -1)


def test_never_open_calendar_raises_instead_of_looping():
    never = BusinessCalendar("Europe/Berlin", {0: ()})  # Monday listed without hours; other days closed
    t = u("2026-01-01T00:00Z")
    assert never.elapsed_us(t, t + 400 * DAY_US) == 0
    began = time.perf_counter()
    with pytest.raises(ValueError, match="no open time"):
        never.add_us(t, 1)
    assert time.perf_counter() - began < 5


def test_rare_opening_is_found_within_the_scan_limit():
    # Mondays only, 00:00-00:01 UTC.
    monday_minute = BusinessCalendar("UTC", {0: ((0, 1),)})
    t = u("2024-01-02T00:00Z")  # a Tuesday
    assert monday_minute.add_us(t, 1) == u("2024-01-08T00:00Z") + 1
    assert monday_minute.add_us(t, M) == u("2024-01-08T00:01Z")
    # 52 minutes need 52 Mondays: the last is 2024-12-30 (the 52nd Monday after 2024-01-02).
    assert monday_minute.add_us(t, 52 * M) == u("2024-12-30T00:01Z")
    # A holiday-only year is skipped: every day of 2025 and 2026 closed, open again on 2027-01-04.
    closed = frozenset(date.fromordinal(d) for d in range(date(2025, 1, 1).toordinal(),
                                                          date(2027, 1, 1).toordinal()))
    sparse = BusinessCalendar("UTC", {0: ((0, 1),)}, holiday_dates=closed)
    assert sparse.add_us(u("2024-12-31T00:00Z"), 1) == u("2027-01-04T00:00Z") + 1


def test_always_open():
    cal = AlwaysOpen("Europe/Berlin")
    assert cal.elapsed_us(10, 25) == 15
    assert cal.elapsed_us(25, 10) == 0
    assert cal.add_us(10, 15) == 25
    assert cal.add_us(10, 0) == 10
    assert cal.is_open(u("2026-12-25T12:00+01:00"))
    assert cal.open_spans(date(2026, 10, 25)) == ((u("2026-10-24T22:00Z"), u("2026-10-25T23:00Z")),)
    with pytest.raises(ValueError):
        cal.add_us(0, -1)


def test_from_contract_and_calendar_for():
    contract = Calendar.model_validate(
        {"hours": {"mon-fri": ["09:00-12:00", "13:00-17:00"]},
         "holidays": {"country": "US", "subdivision": "NY", "dates": ["2026-11-27"]}}
    )
    cal = BusinessCalendar.from_contract("America/New_York", contract)
    assert cal.weekly == LUNCH
    assert cal.is_holiday(date(2026, 11, 26)) and cal.is_holiday(date(2026, 11, 27))
    shared = calendar_for("America/New_York", contract, "business")
    assert isinstance(shared, BusinessCalendar)
    assert shared is calendar_for("America/New_York", contract.model_copy(), "business")
    assert shared.add_us(u("2026-11-25T16:00-05:00"), 3 * H) == u("2026-11-30T11:00-05:00")
    assert isinstance(calendar_for("America/New_York", contract, "calendar"), AlwaysOpen)
    always_biz = calendar_for("UTC", None, "business")
    assert always_biz.elapsed_us(0, DAY_US) == DAY_US
    with pytest.raises(ValueError):
        calendar_for("UTC", contract, "weekdays")


def test_invalid_weekly_spans_are_rejected():
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {7: ((0, 60),)})
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {0: ((600, 60),)})


def test_long_durations_are_fast(berlin):
    start = u("2026-01-05T09:00+01:00")
    began = time.perf_counter()
    for i in range(1000):
        deadline = berlin.add_us(start + i * H, 30 * 24 * H)  # 30 x 24 business hours = 72 working days
    assert time.perf_counter() - began < 1.0
    assert berlin.elapsed_us(start + 999 * H, deadline) == 30 * 24 * H


# ---------------------------------------------------------------------------------- properties

CALENDARS = {
    "berlin_biz": BusinessCalendar("Europe/Berlin", WEEKDAYS_8_18, "DE"),
    "ny_lunch": BusinessCalendar("America/New_York", LUNCH, "US", "NY"),
    "berlin_24x7_holidays": BusinessCalendar("Europe/Berlin", {}, "DE",
                                             holiday_dates=frozenset({date(2026, 3, 29)})),
    "berlin_gap_spans": BusinessCalendar("Europe/Berlin", {6: ((150, 300),), 5: ((1200, 1440),),
                                                           2: ((0, 90), (90, 100))}),
    "ny_night": BusinessCalendar("America/New_York", {6: ((0, 90), (120, 180)), 0: ((1380, 1440),)}),
    "santiago": BusinessCalendar("America/Santiago", {5: ((0, 1440),), 6: ((0, 1440),),
                                                      1: ((540, 1080),)}, "CL"),
    "always": AlwaysOpen("Europe/Berlin"),
}
LO, HI = u("2025-01-01T00:00Z"), u("2028-01-01T00:00Z")
instants = st.integers(LO, HI)
amounts = st.one_of(st.integers(0, 10 * M), st.integers(0, 60 * DAY_US))
calendars = st.sampled_from(sorted(CALENDARS))
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(calendars, instants, amounts)
def test_add_then_elapsed_roundtrips_and_is_earliest(name, start, amount):
    cal = CALENDARS[name]
    t = cal.add_us(start, amount)
    assert t >= start
    assert cal.elapsed_us(start, t) == amount
    if amount > 0:
        # the microsecond just before t is open and needed, so nothing earlier reaches the amount
        assert cal.elapsed_us(start, t - 1) == amount - 1
        assert cal.is_open(t - 1)


@PROPS
@given(calendars, instants, amounts, amounts)
def test_add_is_monotonic(name, start, a1, a2):
    cal = CALENDARS[name]
    a1, a2 = sorted((a1, a2))
    assert cal.add_us(start, a1) <= cal.add_us(start, a2)


@PROPS
@given(calendars, instants, instants, instants)
def test_elapsed_is_additive(name, a, b, c):
    cal = CALENDARS[name]
    a, b, c = sorted((a, b, c))
    assert cal.elapsed_us(a, b) + cal.elapsed_us(b, c) == cal.elapsed_us(a, c)
    assert 0 <= cal.elapsed_us(a, c) <= c - a


@functools.cache
def _reference_holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def _reference_open(cal: BusinessCalendar, t_us: int) -> bool:
    """Open iff the wall clock shows a non-holiday date and a time inside that weekday's hours."""
    local = from_us(t_us).astimezone(ZoneInfo(cal.tz))
    day = local.date()
    if day in cal.holiday_dates:
        return False
    if cal.holiday_country and day in _reference_holidays(cal.holiday_country, cal.holiday_subdivision,
                                                          day.year):
        return False
    minute = local.hour * 60 + local.minute
    spans = cal.weekly.get(day.weekday(), ()) if cal.weekly else ((0, 1440),)
    return any(s <= minute < e for s, e in spans)


DST_DAYS = [u(x) for x in ("2026-03-28T12:00Z", "2026-10-24T12:00Z", "2026-03-07T12:00Z",
                           "2026-10-31T12:00Z", "2026-04-04T00:00Z", "2026-09-05T00:00Z",
                           "2026-12-24T00:00Z", "2026-11-25T00:00Z")]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(n for n in CALENDARS if n != "always")), st.sampled_from(DST_DAYS),
       st.integers(-2 * 24 * 60, 2 * 24 * 60), st.integers(0, 3 * 24 * 60))
def test_matches_minute_by_minute_wall_clock_reference(name, base, shift_min, length_min):
    cal = CALENDARS[name]
    start = base + shift_min * M
    end = start + length_min * M
    open_minutes = 0
    for t in range(start, end, M):
        expected = _reference_open(cal, t)
        assert cal.is_open(t) == expected, (name, from_us(t))
        open_minutes += expected
    assert cal.elapsed_us(start, end) == open_minutes * M


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(0, 10 * DAY_US))
def test_add_with_a_closed_start(name, start, amount):
    cal = CALENDARS[name]
    assume(not cal.is_open(start))
    t = cal.add_us(start, amount)
    assert cal.elapsed_us(start, t) == amount
