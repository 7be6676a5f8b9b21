"""Contracts: clients, calendars and SLAs (spec section 2), loaded from YAML.

The pydantic models are the edge; `load_contracts` turns a validation error into a `ContractError` that
names the file, the line and the path of the bad field, and what was expected.

Hostile input is refused with a `ContractError` too, quickly and in bounded memory: the file is read by
`monitor.yaml_loader` (the reader of every configuration file: a `yaml.SafeLoader` subclass, no python tags;
nesting deeper than `MAX_YAML_DEPTH`, aliases that expand to more than `MAX_YAML_NODES` nodes and keys given
twice are refused before anything is built), floats must be finite and durations at most `MAX_DURATION_US`.
The top-level `version:` is the file format (absent: 1); an unknown version is refused.
"""

from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor import yaml_loader
from monitor.durations import parse_duration_us
from monitor.errors import SlamonError
from monitor.events import Name, to_us
from monitor.yaml_loader import MAX_YAML_DEPTH, MAX_YAML_NODES  # noqa: F401 - the limits, re-exported
from monitor.yaml_loader import short as _short

MAX_DURATION_US = 3660 * 86_400_000_000  # ten years: longer than any target, period or lateness
MAX_CONTRACT_BYTES = yaml_loader.MAX_YAML_BYTES


def _duration_us(value: Any) -> int:
    """parse_duration_us for untrusted input: only strings and finite numbers, at most ten years."""
    if not isinstance(value, str | int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"expected a duration like '30m' or a number of seconds, got {_short(value)}")
    too_long = ValueError(f"duration longer than {MAX_DURATION_US // 86_400_000_000} days")
    try:
        us = parse_duration_us(value)
    except OverflowError:  # 1e308 seconds, or '999...9s' with 400 digits: infinite microseconds
        raise too_long from None
    if us > MAX_DURATION_US:
        raise too_long
    return us


DurationUs = Annotated[int, BeforeValidator(_duration_us)]
Ratio = Annotated[float, Field(ge=0, le=1)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TICKET_KINDS = ("first_response", "resolution")
CALL_KINDS = ("service_level", "asa", "abandon_rate", "aht")
VALUE_KINDS = ("asa", "aht", "abandon_rate")  # lower is better; target is a ceiling


class _Model(BaseModel):
    # NaN and infinity would pass range checks written as `not lo <= x <= hi` and poison every figure.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Holidays(_Model):
    country: str | None = Field(None, description="ISO 3166 code understood by the `holidays` library")
    subdivision: str | None = None
    dates: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _known_country(self):
        if self.country is not None:
            import holidays

            # country_holidays() looks the name up as a module attribute: '__init__' or 'utils' would not
            # fail with NotImplementedError, so only the library's own list of codes is accepted.
            if self.country not in holidays.list_supported_countries():
                raise ValueError(f"unknown holiday country {self.country!r} (an ISO 3166 code such as 'DE')")
            try:
                holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
            except NotImplementedError as err:
                raise ValueError(f"unknown holiday country/subdivision: {err}") from None
        elif self.subdivision is not None:
            raise ValueError("'subdivision' needs 'country'")
        return self


def _parse_hours(value: Any) -> tuple[tuple[int, int], ...]:
    """'08:00-18:00' or a list of them -> ((480, 1080), ...) minutes after local midnight."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected 'HH:MM-HH:MM' or a list of them")
    spans = []
    for item in items:
        try:
            start, end = (_minutes(part) for part in str(item).split("-"))
        except ValueError:
            raise ValueError(f"expected 'HH:MM-HH:MM', got {item!r}") from None
        if not 0 <= start < end <= 1440:
            raise ValueError(f"span {item!r} must start before it ends, within 00:00-24:00")
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"overlapping spans in {items!r}")
    return tuple(spans)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    return int(hours) * 60 + int(minutes)


Hours = Annotated[tuple[tuple[int, int], ...], BeforeValidator(_parse_hours)]


class Calendar(_Model):
    """Weekly business hours in the client's timezone. Keys: mon..sun, or ranges like mon-fri."""

    hours: dict[str, Hours] = Field(default_factory=dict)
    holidays: Holidays = Holidays()

    @field_validator("hours", mode="before")
    @classmethod
    def _expand_ranges(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, spans in value.items():
            for day in _expand_days(str(key)):
                if day in out:
                    raise ValueError(f"day {day!r} is given twice")
                out[day] = spans
        return out

    def weekly_minutes(self) -> dict[int, tuple[tuple[int, int], ...]]:
        return {WEEKDAYS.index(day): spans for day, spans in self.hours.items()}


def _expand_days(key: str) -> list[str]:
    if "-" in key:
        first, last = key.split("-", 1)
        if first not in WEEKDAYS or last not in WEEKDAYS:
            raise ValueError(f"unknown day range {key!r}; use mon..sun")
        i, j = WEEKDAYS.index(first), WEEKDAYS.index(last)
        if j < i:
            raise ValueError(f"day range {key!r} runs backwards")
        return list(WEEKDAYS[i : j + 1])
    if key not in WEEKDAYS:
        raise ValueError(f"unknown day {key!r}; use mon, tue, wed, thu, fri, sat, sun")
    return [key]


class MaintenanceWindow(_Model):
    start: AwareDatetime
    end: AwareDatetime
    services: tuple[Name, ...] = ()  # empty: every service of the client

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError("maintenance 'end' must be after 'start'")
        return self

    @property
    def span_us(self) -> tuple[int, int]:
        return to_us(self.start), to_us(self.end)


class Rolling(_Model):
    rolling: DurationUs

    @field_validator("rolling")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("rolling period must be positive")
        return value


Period = Literal["month", "week", "day"] | Rolling


class PenaltyTier(_Model):
    below: float | None = Field(None, description="ratio kinds: credit when compliance < below")
    above: float | None = Field(None, description="asa/aht/abandon_rate: credit when value > above")
    credit_percent: Annotated[float, Field(gt=0, le=100)]

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.below is None) == (self.above is None):
            raise ValueError("a penalty tier needs exactly one of 'below' or 'above'")
        return self


class Penalty(_Model):
    monthly_fee: Annotated[float, Field(ge=0)]
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    tiers: tuple[PenaltyTier, ...] = Field(min_length=1)


class _SlaBase(_Model):
    name: Name
    period: Period = "month"
    stages: tuple[Ratio, ...] = (0.5, 0.75, 0.9)
    penalty: Penalty | None = None

    @field_validator("stages")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)) or any(s <= 0 or s >= 1 for s in value):
            raise ValueError("stages must be increasing fractions strictly between 0 and 1")
        return value

    @model_validator(mode="after")
    def _tiers_match_kind(self):
        _check_tiers(self)
        return self

    # Facts about the objective, defined here once (as Pyrra's slo.go does) and read by the report, the review,
    # the metrics and the rule generator. The defaults are a share of good items that must reach `target`.

    @property
    def goal(self) -> float:
        """What a period's value is compared with."""
        return self.target

    @property
    def unit(self) -> Literal["ratio", "seconds", "score"]:
        """The unit of the period's value (and of `goal`)."""
        return "ratio"

    @property
    def lower_is_better(self) -> bool:
        """True when the goal is a ceiling (a wait, a handle time, an abandon rate)."""
        return False

    @property
    def value_is_mean(self) -> bool:
        """The period's value is the mean of a measured total (seconds or scores), not a share of items."""
        return False

    @property
    def judges_items(self) -> bool:
        """Each item is decided good or bad (so counts of good and bad items mean something)."""
        return True

    @property
    def value_is_bad_share(self) -> bool:
        """The value is the share of bad items (an abandon rate), a ceiling."""
        return False

    @property
    def has_item_clocks(self) -> bool:
        """Each item runs a clock with a deadline (tickets): open items, stages and breach lists exist."""
        return False

    @property
    def good_share_goal(self) -> float | None:
        """The share of good items the period needs, for burn rates and projections; None without one."""
        return self.target

    @property
    def allowed_error(self) -> float | None:
        """The share of items allowed to be bad (the error budget); None when the goal is not a share."""
        return 1 - self.target

    @property
    def title(self) -> str:
        """What people call this SLA, for reports and dashboards."""
        return KIND_TITLES[self.kind]

    @property
    def item_noun(self) -> str:
        """What one decided item is, plural: 'tickets', 'calls'..."""
        return ITEM_NOUNS[self.kind]

    @property
    def miss_noun(self) -> str | None:
        """What a bad item is, for misses-per-day charts; None when items are not judged one by one."""
        return MISS_NOUNS.get(self.kind)

    @property
    def met_phrase(self) -> str:
        """What the value's share measures, in words ('of tickets answered in time'); '' for plain values."""
        return MET_PHRASES.get(self.kind, "")


KIND_TITLES = {
    "first_response": "First response", "resolution": "Resolution", "service_level": "Service level",
    "asa": "Average speed of answer", "abandon_rate": "Abandon rate", "aht": "Average handle time",
    "uptime": "Uptime", "csat": "Customer satisfaction", "accuracy": "Accuracy",
}
ITEM_NOUNS = {"first_response": "tickets", "resolution": "tickets", "service_level": "calls", "asa": "calls",
              "abandon_rate": "calls", "aht": "calls", "csat": "surveys", "accuracy": "items audited",
              "uptime": "seconds measured"}
MISS_NOUNS = {
    "first_response": "tickets late", "resolution": "tickets late", "service_level": "calls over target",
    "abandon_rate": "abandoned calls", "csat": "low scores", "accuracy": "errors", "uptime": "minutes down",
}
MET_PHRASES = {"first_response": "of tickets answered in time", "resolution": "of tickets resolved in time",
               "service_level": "of calls answered in time", "uptime": "availability", "accuracy": "accuracy",
               "csat": "satisfied customers"}


class TicketSla(_SlaBase):
    kind: Literal["first_response", "resolution"]
    target: dict[Name, DurationUs] = Field(description="allowed time per priority")
    objective: Ratio = Field(description="share of tickets that must meet their deadline")
    time: Literal["business", "calendar"] = "business"
    pause_statuses: frozenset[Name] = frozenset()
    queues: frozenset[Name] = frozenset()  # empty: every queue
    channels: frozenset[Name] = frozenset()

    @field_validator("target")
    @classmethod
    def _positive_targets(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("needs at least one priority")
        for prio, us in value.items():
            if us <= 0:
                raise ValueError(f"target for priority {prio!r} must be positive")
        return value

    @property
    def goal(self) -> float:
        return self.objective

    @property
    def good_share_goal(self) -> float:
        return self.objective

    @property
    def allowed_error(self) -> float:
        return 1 - self.objective

    @property
    def has_item_clocks(self) -> bool:
        return True

    @property
    def stops_on_agent_reply(self) -> bool:
        """A first-response clock stops at the first agent reply; a resolution clock at resolved/closed."""
        return self.kind == "first_response"

    @property
    def restarts_on_reopen(self) -> bool:
        """A reopened ticket withdraws a met resolution and runs its clock again."""
        return self.kind == "resolution"


class CallSla(_SlaBase):
    kind: Literal["service_level", "asa", "abandon_rate", "aht"]
    target: float = Field(description="ratio for service_level/abandon_rate, seconds for asa/aht")
    within: DurationUs | None = Field(None, description="service_level: answer threshold T")
    abandons: Literal["count", "ignore"] = "count"
    short_abandon: DurationUs = 5_000_000
    queues: frozenset[Name] = frozenset()

    @field_validator("target", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info) -> Any:
        if isinstance(value, str):  # asa/aht may say "30s"
            return _duration_us(value) / 1_000_000
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "service_level" and self.within is None:
            raise ValueError("a service_level SLA needs 'within' (e.g. 20s)")
        if self.kind in ("service_level", "abandon_rate") and not 0 <= self.target <= 1:
            raise ValueError(f"{self.kind} target is a ratio between 0 and 1, got {self.target}")
        if self.kind in ("asa", "aht") and not 0 < self.target <= MAX_DURATION_US / 1_000_000:
            raise ValueError(f"{self.kind} target is a positive number of seconds, at most ten years")
        return self

    @property
    def unit(self) -> Literal["ratio", "seconds"]:
        return "seconds" if self.value_is_mean else "ratio"

    @property
    def lower_is_better(self) -> bool:
        return self.kind in VALUE_KINDS

    @property
    def value_is_mean(self) -> bool:
        """ASA and AHT are mean seconds per answered call."""
        return self.kind in ("asa", "aht")

    @property
    def judges_items(self) -> bool:
        return not self.value_is_mean

    @property
    def good_share_goal(self) -> float | None:
        if self.value_is_mean:
            return None
        return 1 - self.target if self.kind == "abandon_rate" else self.target

    @property
    def allowed_error(self) -> float | None:
        if self.value_is_mean:
            return None
        return self.target if self.kind == "abandon_rate" else 1 - self.target

    @property
    def answered_within_us(self) -> int | None:
        """A service level's threshold T: a call is good when answered within it."""
        return self.within if self.kind == "service_level" else None

    @property
    def value_is_bad_share(self) -> bool:
        return self.kind == "abandon_rate"

    @property
    def mean_of(self) -> Literal["wait", "handle"] | None:
        """What a mean-valued call SLA averages: the wait before answer (ASA) or the handle time (AHT)."""
        return {"asa": "wait", "aht": "handle"}.get(self.kind)

    @property
    def counts_abandons(self) -> bool:
        """Abandoned calls (past the short-abandon threshold) count as bad."""
        return self.kind == "abandon_rate" or (self.kind == "service_level" and self.abandons == "count")

    @property
    def title(self) -> str:
        if self.kind == "service_level":
            return f"{KIND_TITLES[self.kind]} ({self.within / 1_000_000:g} s)"
        return KIND_TITLES[self.kind]


class UptimeSla(_SlaBase):
    kind: Literal["uptime"]
    target: Ratio
    service: Name
    probe_interval: DurationUs = 60_000_000

    @property
    def title(self) -> str:
        return f"{KIND_TITLES[self.kind]} ({self.service})"


class CsatSla(_SlaBase):
    kind: Literal["csat"]
    target: float
    method: Literal["share", "mean"] = "share"
    good_score: Annotated[int, Field(ge=1, le=5)] = 4

    @model_validator(mode="after")
    def _target_range(self):
        if self.method == "share" and not 0 <= self.target <= 1:
            raise ValueError("csat 'share' target is a ratio between 0 and 1")
        if self.method == "mean" and not 1 <= self.target <= 5:
            raise ValueError("csat 'mean' target is a score between 1 and 5")
        return self

    @property
    def unit(self) -> Literal["ratio", "score"]:
        return "score" if self.value_is_mean else "ratio"

    @property
    def value_is_mean(self) -> bool:
        """`mean`: the mean score of the surveys; `share`: the share of scores at `good_score` or above."""
        return self.method == "mean"

    @property
    def good_share_goal(self) -> float | None:
        return None if self.value_is_mean else self.target

    @property
    def allowed_error(self) -> float | None:
        return None if self.value_is_mean else 1 - self.target

    @property
    def met_phrase(self) -> str:
        return "" if self.value_is_mean else MET_PHRASES[self.kind]

    @property
    def title(self) -> str:
        how = "mean score" if self.value_is_mean else f"share ≥ {self.good_score}"
        return f"{KIND_TITLES[self.kind]} ({how})"


class AccuracySla(_SlaBase):
    kind: Literal["accuracy"]
    target: Ratio


def _check_tiers(sla) -> None:
    if sla.penalty is None:
        return
    needs = "above" if sla.lower_is_better else "below"
    for tier in sla.penalty.tiers:
        if getattr(tier, needs) is None:
            raise ValueError(f"penalty tiers of a {sla.kind} SLA use '{needs}'")


Sla = Annotated[TicketSla | CallSla | UptimeSla | CsatSla | AccuracySla, Field(discriminator="kind")]


class Client(_Model):
    timezone: str
    calendar: Calendar = Calendar()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    allowed_lateness: DurationUs | None = None
    reopen_window: DurationUs | None = None  # see Contracts.reopen_window
    slas: tuple[Sla, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'Europe/Berlin')") from None
        return value

    @model_validator(mode="after")
    def _unique_names(self):
        names = [sla.name for sla in self.slas]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"SLA names must be unique per client: {dupes}")
        return self


DEFAULT_REOPEN_WINDOW_US = 7 * 86_400_000_000


class Contracts(_Model):
    version: Literal[1] = 1  # the file format; `parse_contracts` names the supported versions
    allowed_lateness: DurationUs = 3_600_000_000
    # How long a resolved/closed ticket may still be reopened; after it the ticket is final (spec "Final items").
    # 7 days: ticketing systems close solved tickets automatically (Zendesk after 4 days by default, ServiceNow
    # incidents 7 days after resolution) and do not reopen a closed ticket (a follow-up is a new ticket); a
    # worker holds every ticket of the window in memory and in its checkpoint. README "Final items".
    reopen_window: DurationUs = DEFAULT_REOPEN_WINDOW_US
    clients: dict[Name, Client] = Field(min_length=1)

    def lateness_us(self, client: str) -> int:
        own = self.clients[client].allowed_lateness
        return self.allowed_lateness if own is None else own

    def reopen_window_us(self, client: str) -> int:
        own = self.clients[client].reopen_window
        return self.reopen_window if own is None else own


class ContractError(SlamonError, ValueError):
    """A contract file that cannot be used; the message names file, line and field."""


_ContractLoader = yaml_loader.SafeYamlLoader  # the loader of every configuration file (monitor/yaml_loader.py)


def load_contracts(path: str | Path) -> Contracts:
    return parse_contracts(yaml_loader.read_text(path, ContractError), str(path))


def parse_contracts(text: str, source: str = "<contracts>") -> Contracts:
    data, root = yaml_loader.load(text, source, ContractError)
    if not isinstance(data, dict):
        raise ContractError(f"{source}:1: expected a mapping with 'clients:' at the top")
    yaml_loader.check_version(data, root, source, ContractError)
    try:
        return Contracts.model_validate(data)
    except ValidationError as err:
        raise ContractError(yaml_loader.explain(err, root, source, skip=_is_union_tag)) from None


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in TICKET_KINDS + CALL_KINDS + ("uptime", "csat", "accuracy")
                                       or part.startswith(("function-", "literal[", "tagged-union")))
