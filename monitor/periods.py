"""Measurement periods: calendar month (default), ISO week, day, and rolling windows.

Calendar periods start at local midnight in the client's timezone (month: the 1st; week: Monday, labelled with
the ISO week, e.g. "2026-W53") and end where the next one starts, converted to UTC instants with DST handled:
a local midnight is its first occurrence, and a midnight inside a spring-forward gap is the instant the gap
ends (`monitor.calendar.local_start_us`). Periods are half-open [start_us, end_us) and partition time.

Rolling periods have no fixed boundaries: they are evaluated at a report instant with `rolling_window`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from monitor.calendar import DAY_US, HOUR_US, MINUTE_US, local_start_us

CALENDAR_PERIODS = ("month", "week", "day")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    label: str  # "2026-11" (month), "2026-W48" (ISO week), "2026-11-23" (day), "rolling-30d" (rolling)
    start_us: int  # inclusive
    end_us: int  # exclusive

    def contains(self, t_us: int) -> bool:
        return self.start_us <= t_us < self.end_us

    @property
    def length_us(self) -> int:
        return self.end_us - self.start_us


def _check(period) -> str:
    if isinstance(period, str):
        if period in CALENDAR_PERIODS:
            return period
        raise ValueError(f"unknown period {period!r}; expected one of {CALENDAR_PERIODS} or rolling")
    if hasattr(period, "rolling"):
        raise ValueError(
            "a rolling period has no fixed boundaries; evaluate it at a report instant with rolling_window()"
        )
    raise ValueError(f"unknown period {period!r}")


def _bounds(day: _dt.date, period: str) -> tuple[_dt.date, _dt.date, str]:
    """(first local date, first local date of the next period, label) of the period containing `day`."""
    if period == "month":
        first = day.replace(day=1)
        nxt = _dt.date(first.year + 1, 1, 1) if first.month == 12 else first.replace(month=first.month + 1)
        return first, nxt, f"{first.year:04d}-{first.month:02d}"
    if period == "week":
        first = day - _dt.timedelta(days=day.weekday())
        iso = first.isocalendar()
        return first, first + _dt.timedelta(days=7), f"{iso.year:04d}-W{iso.week:02d}"
    return day, day + _dt.timedelta(days=1), day.isoformat()


@lru_cache(maxsize=65536)
def _window(day: _dt.date, period: str, tz: str) -> tuple[PeriodWindow, _dt.date, _dt.date]:
    zone = ZoneInfo(tz)
    first, nxt, label = _bounds(day, period)
    start = local_start_us(zone, _dt.datetime.combine(first, _dt.time()))
    end = local_start_us(zone, _dt.datetime.combine(nxt, _dt.time()))
    return PeriodWindow(label, start, end), first, nxt


def _local_date(t_us: int, tz: str) -> _dt.date:
    return (_EPOCH + _dt.timedelta(microseconds=t_us)).astimezone(ZoneInfo(tz)).date()


def _containing(t_us: int, period: str, tz: str) -> tuple[PeriodWindow, _dt.date, _dt.date]:
    w, first, nxt = _window(_local_date(t_us, tz), period, tz)
    # Only in zones whose clocks fall back across midnight can an instant's wall date disagree with the
    # (contiguous) window holding it; step to the neighbour then.
    while t_us < w.start_us:
        w, first, nxt = _window(first - _dt.timedelta(days=1), period, tz)
    while t_us >= w.end_us:
        w, first, nxt = _window(nxt, period, tz)
    return w, first, nxt


@lru_cache(maxsize=65536)
def _windows_of_utc_day(day_index: int, period: str, tz: str) -> tuple[PeriodWindow, ...]:
    """Every window overlapping the UTC day [day_index * DAY, (day_index + 1) * DAY)."""
    lo, hi = day_index * DAY_US, (day_index + 1) * DAY_US
    w, _, nxt = _containing(lo, period, tz)
    out = [w]
    while w.end_us < hi:
        w, _, nxt = _window(nxt, period, tz)
        out.append(w)
    return tuple(out)


def period_of(t_us: int, period, tz: str) -> PeriodWindow:
    """The calendar period ("month" | "week" | "day") containing instant `t_us` in timezone `tz`.

    Raises ValueError for a rolling period (use `rolling_window`) or an unknown one.
    """
    if type(period) is not str or period not in CALENDAR_PERIODS:
        _check(period)
    windows = _windows_of_utc_day(t_us // DAY_US, period, tz)
    if len(windows) == 1:
        return windows[0]
    for w in windows:
        if w.start_us <= t_us < w.end_us:
            return w
    raise AssertionError("unreachable: windows cover the day")  # pragma: no cover


def rolling_label(length_us: int) -> str:
    for unit, size in (("d", DAY_US), ("h", HOUR_US), ("m", MINUTE_US), ("s", 1_000_000)):
        if length_us % size == 0:
            return f"rolling-{length_us // size}{unit}"
    return f"rolling-{length_us}us"


def rolling_window(at_us: int, length_us: int) -> PeriodWindow:
    """The window (at - length, at], i.e. start = at - length + 1 (inclusive), end = at + 1 (exclusive)."""
    if length_us <= 0:
        raise ValueError(f"rolling window length must be positive, got {length_us}")
    return PeriodWindow(rolling_label(length_us), at_us - length_us + 1, at_us + 1)


def periods_between(start_us: int, end_us: int, period, tz: str) -> list[PeriodWindow]:
    """Every calendar period touching [start, end), in order; [] if end <= start."""
    _check(period)
    if end_us <= start_us:
        return []
    w, _, nxt = _containing(start_us, period, tz)
    out = [w]
    while w.end_us < end_us:
        w, _, nxt = _window(nxt, period, tz)
        out.append(w)
    return out


def split_by_period(start_us: int, end_us: int, period, tz: str) -> list[tuple[PeriodWindow, int, int]]:
    """[start, end) cut at period boundaries: [(window, piece_start, piece_end)], non-empty, in order."""
    return [(w, max(start_us, w.start_us), min(end_us, w.end_us))
            for w in periods_between(start_us, end_us, period, tz)]
