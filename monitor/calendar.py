"""Business-time arithmetic: how much open time lies between two instants, and when a clock reaches a target.

All instants are integer microseconds since the Unix epoch (UTC), as everywhere in the engine.

Rules
-----
* Weekly hours are local wall-clock spans in the client's timezone, in minutes after local midnight
  (``end`` may be 1440 = 24:00). A weekday missing from ``weekly`` is closed; an empty ``weekly``
  mapping means open around the clock (00:00-24:00 every day). A holiday closes the whole local day:
  the dates of ``holidays.country_holidays(country, subdiv=...)`` with the library's defaults (so
  *observed* substitute days such as US 2026-07-03 are holidays too) plus explicit dates.
* **Wall-clock rule (DST).** The business is open at instant ``t`` exactly when the local wall clock at
  ``t`` shows a non-holiday date and a time inside one of that weekday's spans. Each local day's spans are
  therefore the preimage, under UTC -> local, of the wall-clock interval ``[day + start, day + end)``:

  - a span of fixed wall length is that long on any day whose clock change it does not straddle:
    08:00-18:00 is 10 h of business time on DST days in Europe and the US;
  - a 00:00-24:00 day is 23 h on spring-forward day and 25 h on fall-back day (Europe/Berlin 2026-03-29
    and 2026-10-25; America/New_York 2026-03-08 and 2026-11-01);
  - a local time that does not exist (inside the spring-forward gap) behaves as the instant the gap
    ends, for span starts and span ends alike (Berlin 02:30-05:00 on 2026-03-29 is 01:00-03:00 UTC);
  - a repeated local time (fall-back) starts a span at its *first* occurrence (fold=0) and ends a span
    at its *second* occurrence (fold=1), so 00:00-24:00 counts the full 25 h. One refinement over
    "first occurrence starts, second occurrence ends": a boundary strictly inside the repeated hour
    leaves out the stretch during which the clock reads a time outside the span. Berlin 02:30-05:00 on
    2026-10-25 is 00:30-01:00 UTC plus 01:30-04:00 UTC (3 h: while the clock re-reads 02:00-02:30 the
    business is closed). Real business hours never put a boundary inside the repeated hour, so this only
    matters for exotic contracts, and it keeps the definition exact: open iff the wall clock says so;
  - every instant has exactly one wall-clock reading, so days never overlap and nothing counts twice.

* ``elapsed_us(a, b)`` counts business microseconds in ``[a, b)``; ``add_us(start, n)`` is the earliest
  ``t >= start`` with ``elapsed_us(start, t) == n`` (so a deadline falls at the end of the last needed
  open microsecond, never at the start of a later span). ``is_open`` uses half-open spans
  ``[start, end)``.

Implementation: time is cut into fixed UTC chunks of 28 days. A chunk holds its merged open spans (from the
cached per-day spans, clipped to the chunk) and a prefix sum of their lengths, so ``elapsed_us`` is two
bisections and ``add_us`` skips whole chunks by their totals and bisects once. No timezone conversion happens
once a chunk is built.
"""

from __future__ import annotations

import datetime as _dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from functools import lru_cache
from zoneinfo import ZoneInfo

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
CHUNK_US = 28 * DAY_US
"""Size of a cached block of time (UTC-aligned, multiple of a day)."""

MAX_CLOSED_SCAN_US = 3 * 366 * DAY_US
"""`add_us` gives up (ValueError) after this much consecutive time without any open span."""

EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_UTC = _dt.UTC
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_NAIVE_EPOCH = _dt.datetime(1970, 1, 1)
_ONE_US = _dt.timedelta(microseconds=1)
_MARGIN_US = DAY_US  # |UTC offset| < 24 h for every zone in use since 1900

Spans = tuple[tuple[int, int], ...]
Weekly = Mapping[int, Iterable[tuple[int, int]]]


# ------------------------------------------------------ timezone helpers (used on cache misses only)


def _offset_us(zone: ZoneInfo, t_us: int) -> int:
    """UTC offset of `zone` at instant `t_us`, in microseconds."""
    local = (_EPOCH + _dt.timedelta(microseconds=t_us)).astimezone(zone)
    return local.utcoffset() // _ONE_US


def _wall_us(zone: ZoneInfo, t_us: int) -> int:
    """Local wall-clock reading at `t_us`, as microseconds since 1970-01-01T00:00 *local*."""
    return t_us + _offset_us(zone, t_us)


def _offset_segments(zone: ZoneInfo, lo_us: int, hi_us: int) -> list[tuple[int, int, int]]:
    """[(seg_start, seg_end, offset_us)] covering [lo, hi) with a constant UTC offset in each segment.

    Offsets are sampled hourly and transitions located to the microsecond by bisection (tzdb never has two
    transitions within one hour).
    """
    segs: list[tuple[int, int, int]] = []
    seg_start, seg_off = lo_us, _offset_us(zone, lo_us)
    prev = lo_us
    while prev < hi_us:
        nxt = min(prev + HOUR_US, hi_us)
        off = _offset_us(zone, nxt) if nxt < hi_us else _offset_us(zone, hi_us - 1)
        if off != seg_off:
            a, b = prev, nxt  # offset(a) == seg_off, offset(b) != seg_off: first change in (a, b]
            while b - a > 1:
                mid = (a + b) // 2
                if _offset_us(zone, mid) == seg_off:
                    a = mid
                else:
                    b = mid
            segs.append((seg_start, b, seg_off))
            seg_start, seg_off = b, _offset_us(zone, b)
        prev = nxt
    segs.append((seg_start, hi_us, seg_off))
    return segs


def local_start_us(zone: ZoneInfo, wall: _dt.datetime) -> int:
    """The first instant whose local wall clock reads `wall` (naive) or later.

    An existing time maps to its first occurrence (fold=0); a time inside a spring-forward gap maps to the
    instant the gap ends. Used for period boundaries (local midnights).
    """
    candidates = []
    for fold in (0, 1):
        aware = wall.replace(tzinfo=zone, fold=fold)
        candidates.append((aware - _EPOCH) // _ONE_US)
    wall_us = (wall - _NAIVE_EPOCH) // _ONE_US
    exact = [u for u in candidates if _wall_us(zone, u) == wall_us]
    if exact:
        return min(exact)
    a, b = min(candidates), max(candidates)  # wall(a) < wall_us <= wall(b): bisect the gap's end
    while b - a > 1:
        mid = (a + b) // 2
        if _wall_us(zone, mid) >= wall_us:
            b = mid
        else:
            a = mid
    return b


@lru_cache(maxsize=4096)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[_dt.date]:
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


# ------------------------------------------------------------------------------------------ calendars


class _Chunk:
    __slots__ = ("cum", "ends", "starts", "total")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]
        cum, acc = [], 0
        for s, e in spans:
            acc += e - s
            cum.append(acc)
        self.cum = cum  # business time up to the end of span i
        self.total = acc


class BusinessCalendar:
    """Open hours of one client (see the module docstring for the exact rules)."""

    __slots__ = ("_chunks", "_day_cache", "_holiday_years", "_weekly", "holiday_country",
                 "holiday_dates", "holiday_subdivision", "tz", "weekly", "zone")

    def __init__(
        self,
        tz: str,
        weekly: Weekly,
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        holiday_dates: frozenset[_dt.date] = frozenset(),
    ) -> None:
        self.tz = tz
        self.zone = ZoneInfo(tz)
        clean: dict[int, Spans] = {}
        for day, spans in weekly.items():
            if not 0 <= day <= 6:
                raise ValueError(f"weekday must be 0 (Mon) .. 6 (Sun), got {day}")
            spans = tuple(sorted((int(s), int(e)) for s, e in spans))
            for s, e in spans:
                if not 0 <= s < e <= 1440:
                    raise ValueError(f"span {(s, e)} must satisfy 0 <= start < end <= 1440 minutes")
            clean[day] = spans
        self.weekly = clean
        # per weekday, the merged spans in minutes; empty mapping = 24x7
        self._weekly: tuple[Spans, ...] = tuple(
            ((0, 1440),) if not clean else tuple(_merge(clean.get(d, ()))) for d in range(7)
        )
        self.holiday_country = holiday_country
        self.holiday_subdivision = holiday_subdivision
        self.holiday_dates = frozenset(holiday_dates)
        self._holiday_years: dict[int, frozenset[_dt.date]] = {}
        self._day_cache: dict[int, tuple[tuple[int, int], ...]] = {}
        self._chunks: dict[int, _Chunk] = {}

    @classmethod
    def from_contract(cls, tz: str, calendar) -> BusinessCalendar:
        """From a `monitor.contracts.Calendar`."""
        hol = calendar.holidays
        return cls(tz, calendar.weekly_minutes(), hol.country, hol.subdivision, frozenset(hol.dates))

    def __repr__(self) -> str:
        return (f"BusinessCalendar({self.tz!r}, {self.weekly!r}, {self.holiday_country!r}, "
                f"{self.holiday_subdivision!r}, {len(self.holiday_dates)} dates)")

    # -------------------------------------------------------------------------------------- days

    def is_holiday(self, day: _dt.date) -> bool:
        if day in self.holiday_dates:
            return True
        if self.holiday_country is None:
            return False
        year = self._holiday_years.get(day.year)
        if year is None:
            year = _country_holidays(self.holiday_country, self.holiday_subdivision, day.year)
            self._holiday_years[day.year] = year
        return day in year

    def open_spans(self, day: _dt.date) -> tuple[tuple[int, int], ...]:
        """That local day's open spans as sorted, disjoint UTC microsecond pairs [start, end) (cached)."""
        ordinal = day.toordinal()
        spans = self._day_cache.get(ordinal)
        if spans is None:
            wall0 = (ordinal - EPOCH_ORDINAL) * DAY_US
            segs = _offset_segments(self.zone, wall0 - _MARGIN_US, wall0 + DAY_US + _MARGIN_US)
            spans = self._day_spans(ordinal, segs)
        return spans

    def _day_spans(self, ordinal: int, segs: list[tuple[int, int, int]]) -> tuple[tuple[int, int], ...]:
        """Spans of local day `ordinal`; `segs` must cover [wall0 - 1 day, wall0 + 2 days)."""
        spans = self._day_cache.get(ordinal)
        if spans is not None:
            return spans
        day = _dt.date.fromordinal(ordinal)
        minutes = self._weekly[day.weekday()]
        out: list[tuple[int, int]] = []
        if minutes and not self.is_holiday(day):
            wall0 = (ordinal - EPOCH_ORDINAL) * DAY_US
            for s_min, e_min in minutes:
                ws, we = wall0 + s_min * MINUTE_US, wall0 + e_min * MINUTE_US
                for seg_lo, seg_hi, off in segs:
                    lo, hi = max(seg_lo, ws - off), min(seg_hi, we - off)
                    if lo < hi:
                        out.append((lo, hi))
        spans = tuple(_merge(out))
        self._day_cache[ordinal] = spans
        return spans

    def _chunk(self, k: int) -> _Chunk:
        chunk = self._chunks.get(k)
        if chunk is None:
            lo, hi = k * CHUNK_US, (k + 1) * CHUNK_US
            first = EPOCH_ORDINAL + lo // DAY_US - 1
            last = EPOCH_ORDINAL + (hi - 1) // DAY_US + 1
            wall_lo = (first - EPOCH_ORDINAL) * DAY_US
            wall_hi = (last + 1 - EPOCH_ORDINAL) * DAY_US
            segs = _offset_segments(self.zone, wall_lo - _MARGIN_US, wall_hi + _MARGIN_US)
            clipped = []
            for ordinal in range(first, last + 1):
                for s, e in self._day_spans(ordinal, segs):
                    s, e = max(s, lo), min(e, hi)
                    if s < e:
                        clipped.append((s, e))
            chunk = self._chunks[k] = _Chunk(_merge(clipped))
        return chunk

    # ------------------------------------------------------------------------------- arithmetic

    def is_open(self, t_us: int) -> bool:
        chunk = self._chunks.get(t_us // CHUNK_US) or self._chunk(t_us // CHUNK_US)
        i = bisect_right(chunk.starts, t_us) - 1
        return i >= 0 and t_us < chunk.ends[i]

    def elapsed_us(self, start_us: int, end_us: int) -> int:
        """Business microseconds in [start, end); 0 if end <= start."""
        if end_us <= start_us:
            return 0
        chunks = self._chunks
        ka, kb = start_us // CHUNK_US, end_us // CHUNK_US
        ca = chunks.get(ka) or self._chunk(ka)
        # business time of chunk ka before start
        i = bisect_right(ca.starts, start_us) - 1
        before_a = 0 if i < 0 else ca.cum[i] - max(0, ca.ends[i] - start_us)
        if ka == kb:
            cb = ca
            total = -before_a
        else:
            total = ca.total - before_a
            for k in range(ka + 1, kb):
                total += (chunks.get(k) or self._chunk(k)).total
            cb = chunks.get(kb) or self._chunk(kb)
        j = bisect_right(cb.starts, end_us) - 1
        if j >= 0:
            total += cb.cum[j] - max(0, cb.ends[j] - end_us)
        return total

    def add_us(self, start_us: int, amount_us: int) -> int:
        """The earliest t >= start with elapsed_us(start, t) == amount (amount 0 -> start)."""
        if amount_us <= 0:
            if amount_us == 0:
                return start_us
            raise ValueError(f"amount must not be negative, got {amount_us}")
        k = start_us // CHUNK_US
        chunk = self._chunks.get(k) or self._chunk(k)
        i = bisect_right(chunk.starts, start_us) - 1
        target = amount_us + (0 if i < 0 else chunk.cum[i] - max(0, chunk.ends[i] - start_us))
        closed_since = start_us
        while target > chunk.total:
            target -= chunk.total
            if chunk.total:
                closed_since = (k + 1) * CHUNK_US
            elif (k + 1) * CHUNK_US - closed_since >= MAX_CLOSED_SCAN_US:
                raise ValueError(
                    f"{self!r} has no open time in {MAX_CLOSED_SCAN_US // DAY_US} days after "
                    f"{closed_since} us; cannot add {amount_us} us of business time to {start_us}"
                )
            k += 1
            chunk = self._chunks.get(k) or self._chunk(k)
        j = bisect_left(chunk.cum, target)  # first span whose end reaches the target
        return chunk.ends[j] - (chunk.cum[j] - target)


class AlwaysOpen:
    """Calendar time (24x7): every microsecond counts."""

    __slots__ = ("_days", "tz")

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = tz
        self._days = BusinessCalendar(tz, {})

    def __repr__(self) -> str:
        return f"AlwaysOpen({self.tz!r})"

    def elapsed_us(self, start_us: int, end_us: int) -> int:
        return end_us - start_us if end_us > start_us else 0

    def add_us(self, start_us: int, amount_us: int) -> int:
        if amount_us < 0:
            raise ValueError(f"amount must not be negative, got {amount_us}")
        return start_us + amount_us

    def is_open(self, t_us: int) -> bool:
        return True

    def open_spans(self, day: _dt.date) -> tuple[tuple[int, int], ...]:
        """The whole local day (23 h or 25 h on DST days) as one UTC pair."""
        return self._days.open_spans(day)


_CALENDARS: dict[tuple, BusinessCalendar | AlwaysOpen] = {}


def calendar_for(tz: str, contract_calendar, time: str) -> BusinessCalendar | AlwaysOpen:
    """The (shared, cached) calendar an SLA's clock runs on.

    `time` is "business" (weekly hours and holidays of `contract_calendar`, a `monitor.contracts.Calendar`;
    None means open 24x7 without holidays) or "calendar" (24x7, holidays ignored).
    """
    if time == "calendar":
        key: tuple = (tz, "calendar")
    elif time == "business":
        if contract_calendar is None:
            key = (tz, "business", (), None, None, frozenset())
        else:
            hol = contract_calendar.holidays
            weekly = contract_calendar.weekly_minutes()
            key = (tz, "business", tuple(sorted(weekly.items())), hol.country, hol.subdivision,
                   frozenset(hol.dates))
    else:
        raise ValueError(f"time must be 'business' or 'calendar', got {time!r}")
    cal = _CALENDARS.get(key)
    if cal is None:
        if time == "calendar":
            cal = AlwaysOpen(tz)
        else:
            _, _, weekly_items, country, subdivision, dates = key
            cal = BusinessCalendar(tz, dict(weekly_items), country, subdivision, dates)
        _CALENDARS[key] = cal
    return cal
