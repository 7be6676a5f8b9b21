"""Contracts: clients, calendars and SLAs (spec section 2), loaded from YAML.

The pydantic models are the edge; `load_contracts` turns a validation error into a `ContractError` that
names the file, the line and the path of the bad field, and what was expected.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
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

from monitor.durations import parse_duration_us
from monitor.events import Name, to_us

DurationUs = Annotated[int, BeforeValidator(parse_duration_us)]
Ratio = Annotated[float, Field(ge=0, le=1)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TICKET_KINDS = ("first_response", "resolution")
CALL_KINDS = ("service_level", "asa", "abandon_rate", "aht")
VALUE_KINDS = ("asa", "aht", "abandon_rate")  # lower is better; target is a ceiling


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Holidays(_Model):
    country: str | None = Field(None, description="ISO 3166 code understood by the `holidays` library")
    subdivision: str | None = None
    dates: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _known_country(self):
        if self.country is not None:
            import holidays

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
            return parse_duration_us(value) / 1_000_000
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "service_level" and self.within is None:
            raise ValueError("a service_level SLA needs 'within' (e.g. 20s)")
        if self.kind in ("service_level", "abandon_rate") and not 0 <= self.target <= 1:
            raise ValueError(f"{self.kind} target is a ratio between 0 and 1, got {self.target}")
        if self.kind in ("asa", "aht") and self.target <= 0:
            raise ValueError(f"{self.kind} target is a positive number of seconds")
        return self


class UptimeSla(_SlaBase):
    kind: Literal["uptime"]
    target: Ratio
    service: Name
    probe_interval: DurationUs = 60_000_000


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


class AccuracySla(_SlaBase):
    kind: Literal["accuracy"]
    target: Ratio


def _check_tiers(sla) -> None:
    if sla.penalty is None:
        return
    needs = "above" if sla.kind in VALUE_KINDS else "below"
    for tier in sla.penalty.tiers:
        if getattr(tier, needs) is None:
            raise ValueError(f"penalty tiers of a {sla.kind} SLA use '{needs}'")


Sla = Annotated[TicketSla | CallSla | UptimeSla | CsatSla | AccuracySla, Field(discriminator="kind")]


class Client(_Model):
    timezone: str
    calendar: Calendar = Calendar()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    allowed_lateness: DurationUs | None = None
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


class Contracts(_Model):
    allowed_lateness: DurationUs = 3_600_000_000
    clients: dict[Name, Client] = Field(min_length=1)

    def lateness_us(self, client: str) -> int:
        own = self.clients[client].allowed_lateness
        return self.allowed_lateness if own is None else own


class ContractError(ValueError):
    """A contract file that cannot be used; the message names file, line and field."""


def load_contracts(path: str | Path) -> Contracts:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ContractError(f"{path}: cannot read: {err.strerror}") from None
    return parse_contracts(text, str(path))


def parse_contracts(text: str, source: str = "<contracts>") -> Contracts:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ContractError(f"{source}{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{source}:1: expected a mapping with 'clients:' at the top")
    try:
        return Contracts.model_validate(data)
    except ValidationError as err:
        raise ContractError(_explain(err, root, source)) from None


def _explain(err: ValidationError, root: yaml.Node, source: str) -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = [p for p in e["loc"] if not _is_union_tag(p)]
        _node, line = _locate(root, loc)
        path = ".".join(str(p) for p in loc) or "(top)"
        got = "" if e["type"] in ("missing", "value_error") else f" (got {_short(e.get('input'))})"
        lines.append(f"{source}:{line}: {path}: {e['msg']}{got}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in TICKET_KINDS + CALL_KINDS + ("uptime", "csat", "accuracy")
                                       or part.startswith(("function-", "literal[", "tagged-union")))


def _locate(node: yaml.Node | None, loc: list[Any]) -> tuple[yaml.Node | None, int]:
    """Deepest YAML node along `loc`, and its 1-based line."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return node, line


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
