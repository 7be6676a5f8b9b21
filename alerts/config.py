"""The alerting configuration: every threshold that is not an SLA target, in one file SRE teams tune.

Targets come from the contracts (monitor.contracts); this model holds the rest: burn-rate tiers (data in
alerts/windows.yaml, overridable or switched off per SLA), the minimum-volume gate, imminent-breach and
projection settings, penalty-exposure threshold, call, uptime and pipeline thresholds, the alert conventions
(severity label values, static labels, runbook and dashboard base URLs), and the Alertmanager receivers.

Secrets never pass through this model: receivers accept only the `*_file` form of a secret (a path to a
mounted secrets file that Alertmanager reads itself), and any string may be `${ENV}` / `${ENV:-default}`,
expanded from the environment when the file is loaded (see `load_alerting`).

The file is read by `monitor.yaml_loader`, like the contracts: size, nesting and alias limits, no python tags,
no key given twice, and every error names the file, the line and the field. The top-level `version:` is the
file format (absent: 1); an unknown version is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from monitor import yaml_loader
from monitor.durations import parse_duration_us
from monitor.errors import SlamonError

HERE = Path(__file__).resolve().parent
WINDOWS_FILE = HERE / "windows.yaml"
Severity = Literal["page", "ticket", "info"]
SOON_WINDOWS = ("15m", "30m", "60m")  # the `within` label values of slamon_sla_breaching_soon_items


def _seconds(value: Any) -> int:
    us = parse_duration_us(value)
    if us % 1_000_000:
        raise ValueError("durations in the alerting config are whole seconds")
    return us // 1_000_000


Seconds = Annotated[int, BeforeValidator(_seconds)]
Share = Annotated[float, Field(gt=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- burn-rate tiers (alerts/windows.yaml) ----------------------------------------------------------------


class Tier(_Model):
    name: str
    severity: Literal["page", "ticket"]
    budget_share: Share
    long_window: Seconds
    short_window: Seconds

    @field_validator("short_window")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("windows must be positive")
        return value


class Windows(_Model):
    reference_period: Seconds = 30 * 86400
    min_factor: Annotated[float, Field(ge=0)] = 1.0
    for_: dict[Literal["page", "ticket"], Seconds] = Field(
        default_factory=lambda: {"page": 120, "ticket": 900}, alias="for")
    tiers: tuple[Tier, ...]

    @field_validator("tiers")
    @classmethod
    def _unique(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        names = [t.name for t in tiers]
        if len(names) != len(set(names)):
            raise ValueError(f"tier names must be unique: {names}")
        for t in tiers:
            if t.short_window >= t.long_window:
                raise ValueError(f"tier {t.name}: short_window must be shorter than long_window")
        return tiers


class TierOverride(_Model):
    """Per-SLA change of one tier. `factor` wins over `budget_share` (and skips the min_factor floor)."""

    budget_share: Share | None = None
    factor: Annotated[float, Field(gt=0)] | None = None
    long_window: Seconds | None = None
    short_window: Seconds | None = None
    severity: Literal["page", "ticket"] | None = None


def _tier_switch(value: Any) -> Any:
    if value in (False, "off", "disabled", None):
        return False
    return value


TierSetting = Annotated[TierOverride | Literal[False], BeforeValidator(_tier_switch)]


# --- thresholds -------------------------------------------------------------------------------------------


class BurnRate(_Model):
    min_volume: Annotated[int, Field(ge=0)] = 20
    """items decided in the long window below which a burn-rate tier stays silent"""
    uptime_min_volume: Seconds = 1800
    """uptime: seconds of probe-covered time (up + down) the long window needs"""
    min_bad: Annotated[int, Field(ge=0)] = 10
    """page tiers: bad items the threshold must stand for: the long window needs at least min_bad / (factor x
    allowed error ratio) decided items, so a handful of audited items cannot page (accuracy at 99 %, factor 6:
    167); ticket tiers keep `min_volume` (a small desk's slow burn is real)"""
    page_min_z: Annotated[float, Field(ge=0)] = 3.0
    """page tiers: the long window's bad count must exceed what the allowed error ratio a gives by chance:
    (bad - a x decided) / sqrt(a (1 - a) decided) > this (0: off). An SLA running at its objective fluctuates;
    a weekly SLA's 1.4x tier is within that noise on a few hundred items"""
    tiers: dict[str, TierSetting] = Field(default_factory=dict)
    """overrides for every SLA (per-SLA overrides in `slas:` win)"""


class Imminent(_Model):
    within: Literal["15m", "30m", "60m"] = "30m"
    page_priorities: tuple[str, ...] = ()
    """priorities whose imminent items page; none by default: per-item risk is the floor's (a ticket), pages
    are kept for contract-level risk (alerts/README "Defaults")"""
    for_: Seconds = Field(60, alias="for")
    last_stage_for: Seconds = 300
    at_risk_left_share: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """SlamonItemsAtRisk: items that used the contract's stage closest to (1 - this) of their allowed time,
    at or below it; so each warned item still has at least this share of its time"""
    at_risk_for: Seconds = 0
    keep_firing_for: Seconds = 900
    """item alerts keep firing this long after their count drops to 0: a queue that dips to no at-risk item
    for a few minutes is the same episode, not a new notification"""


class Projected(_Model):
    min_volume: Annotated[int, Field(ge=0)] = 50
    uptime_min_volume: Seconds = 6 * 3600
    for_: Seconds = Field(3600, alias="for")


class Budget(_Model):
    min_volume: Annotated[int, Field(ge=0)] = 20
    for_: Seconds = Field(900, alias="for")


class PenaltyAlert(_Model):
    projected_credit_ratio_above: Annotated[float, Field(ge=0)] = 0.0
    """alert when the projected credit exceeds this share of the monthly fee (0: any credit at all)"""
    for_: Seconds = Field(3600, alias="for")


class Calls(_Model):
    window: Seconds = 1800
    min_calls: Annotated[int, Field(ge=0)] = 20
    service_level_for: Seconds = 600
    longest_wait_seconds: Annotated[float, Field(gt=0)] | None = None
    """None: 3 x the service-level SLA's `within`"""
    longest_wait_for: Seconds = 120
    abandon_spike_factor: Annotated[float, Field(gt=1)] = 2.0
    abandon_for: Seconds = 600


class Uptime(_Model):
    down_for: Seconds = 120
    budget_low_remaining: Annotated[float, Field(gt=0, lt=1)] = 0.25
    budget_for: Seconds = 300
    probe_missing_intervals: Annotated[float, Field(gt=1)] = 3.0
    probe_missing_for: Seconds = 300


class Pipeline(_Model):
    job: str = "slamon"
    no_events_minutes: Annotated[float, Field(gt=0)] = 30
    no_events_minutes_by_client: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    no_events_for: Seconds = 300
    dead_letters_window: Seconds = 900
    dead_letters_max: Annotated[int, Field(ge=0)] = 20
    consumer_lag_messages: Annotated[int, Field(gt=0)] = 10_000
    consumer_lag_for: Seconds = 600
    checkpoint_age_seconds: Annotated[int, Field(gt=0)] = 1800
    checkpoint_for: Seconds = 300
    worker_down_for: Seconds = 120


class SlaOverride(_Model):
    """Keyed `client/sla` or `client/*` in `slas:`; the more specific key wins field by field."""

    min_volume: Annotated[int, Field(ge=0)] | None = None
    tiers: dict[str, TierSetting] = Field(default_factory=dict)
    disable: tuple[str, ...] = ()
    """alert names not generated for this SLA (e.g. SlamonPenaltyExposure)"""
    severity: dict[str, Severity] = Field(default_factory=dict)
    imminent_within: Literal["15m", "30m", "60m"] | None = None
    longest_wait_seconds: Annotated[float, Field(gt=0)] | None = None
    projected_min_volume: Annotated[int, Field(ge=0)] | None = None


# --- receivers (Alertmanager) -----------------------------------------------------------------------------


class PagerDuty(_Model):
    routing_key_file: str
    url: str | None = None
    severity: str | None = None


class Slack(_Model):
    api_url_file: str
    channel: str | None = None
    send_resolved: bool = True


class Email(_Model):
    to: str
    from_: str = Field(alias="from")
    smarthost: str
    auth_username: str | None = None
    auth_password_file: str | None = None
    require_tls: bool = True
    send_resolved: bool = True


class Webhook(_Model):
    url: str
    credentials_file: str | None = None
    """bearer token, read by Alertmanager from this file"""
    max_alerts: Annotated[int, Field(ge=0)] = 0
    send_resolved: bool = True


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Receiver(_Model):
    pagerduty: Annotated[tuple[PagerDuty, ...], BeforeValidator(_listify)] = ()
    slack: Annotated[tuple[Slack, ...], BeforeValidator(_listify)] = ()
    email: Annotated[tuple[Email, ...], BeforeValidator(_listify)] = ()
    webhook: Annotated[tuple[Webhook, ...], BeforeValidator(_listify)] = ()


class ClientRouting(_Model):
    page: str | None = None
    ticket: str | None = None
    info: str | None = None


class Routing(_Model):
    page: str = "page"
    ticket: str = "ticket"
    info: str | None = None
    """None: info alerts go to the ticket receiver"""
    pipeline: str | None = None
    """receiver of pipeline / data-missing alerts (platform team); None: by severity"""
    clients: dict[str, ClientRouting] = Field(default_factory=dict)
    group_wait: Seconds = 30
    group_interval: Seconds = 300
    repeat_interval: Seconds = 4 * 3600
    page_repeat_interval: Seconds = 3600
    page_group_wait: Seconds = 10
    """how long the page route gathers alerts before the first notification: it adds to every page's delay
    (an imminent-breach page reaches on-call `for` + this after an item enters the window)"""


# --- the whole ------------------------------------------------------------------------------------------


# label names the generated rules set themselves: a static label may not take one of them
RESERVED_LABELS = frozenset({"alertname", "severity", "client", "sla", "category", "priority", "queue", "service",
                             "partition", "reason", "job", "instance", "long_window", "short_window", "within"})
DEFAULT_SEVERITY_LABELS = {"page": "critical", "ticket": "warning", "info": "info"}
DEFAULT_RUNBOOK_BASE_URL = "docs/runbooks"
"""the runbooks shipped with the deployment (docs/runbooks/ of this tree); set an http(s) URL where yours are served"""
DEFAULT_DASHBOARD_BASE_URL = "http://127.0.0.1:3000"
"""the Grafana of the docker-compose stack (deploy/grafana/)"""
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Alerting(_Model):
    version: Literal[1] = 1
    """the file format; `parse_alerting` names the supported versions"""
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    """runbook_url = <this>/<AlertName>.md"""
    dashboard_base_url: str = DEFAULT_DASHBOARD_BASE_URL
    """dashboard_url = <this>/d/<dashboard uid>?var-client=..&var-sla=.. (Grafana)"""
    severity_labels: dict[Severity, str] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_LABELS))
    """the value of the `severity` label for page / ticket / info (Alertmanager routes on these values)"""
    labels: dict[str, str] = Field(default_factory=dict)
    """static labels on every alert (team, env, ...)"""
    windows: Windows | None = None
    """None: alerts/windows.yaml"""
    burn_rate: BurnRate = BurnRate()
    imminent: Imminent = Imminent()
    projected: Projected = Projected()
    budget: Budget = Budget()
    penalty: PenaltyAlert = PenaltyAlert()
    calls: Calls = Calls()
    uptime: Uptime = Uptime()
    pipeline: Pipeline = Pipeline()
    severity: dict[str, Severity] = Field(default_factory=dict)
    """alert name -> severity, for every SLA"""
    disable: tuple[str, ...] = ()
    """alert names not generated at all"""
    slas: dict[str, SlaOverride] = Field(default_factory=dict)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    routing: Routing = Routing()

    @field_validator("severity_labels")
    @classmethod
    def _severity_labels(cls, value: dict[str, str]) -> dict[str, str]:
        merged = {**DEFAULT_SEVERITY_LABELS, **value}
        if len(set(merged.values())) != len(merged) or not all(merged.values()):
            raise ValueError(f"page, ticket and info need distinct, non-empty severity labels, got {merged}")
        return merged

    @field_validator("labels")
    @classmethod
    def _static_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a Prometheus label name")
            if name in RESERVED_LABELS:
                raise ValueError(f"label {name!r} is set by the generated rules; reserved: {sorted(RESERVED_LABELS)}")
        return value

    @field_validator("slas")
    @classmethod
    def _keys(cls, value: dict[str, SlaOverride]) -> dict[str, SlaOverride]:
        for key in value:
            if key.count("/") != 1 or not all(key.split("/")):
                raise ValueError(f"keys of 'slas' are 'client/sla' or 'client/*', got {key!r}")
        return value

    @property
    def tiers_data(self) -> Windows:
        return self.windows if self.windows is not None else default_windows()

    def override(self, client: str, sla: str) -> SlaOverride:
        """The merged override of one SLA: `client/sla` over `client/*` over nothing."""
        merged: dict[str, Any] = {}
        for key in (f"{client}/*", f"{client}/{sla}"):
            found = self.slas.get(key)
            if found is None:
                continue
            for name in found.model_fields_set:
                value = getattr(found, name)
                if isinstance(value, dict):
                    merged[name] = {**merged.get(name, {}), **value}
                elif name == "disable":
                    merged[name] = (*merged.get(name, ()), *value)
                else:
                    merged[name] = value
        return SlaOverride(**merged)

    def runbook(self, alert: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alert}.md"

    def severity_label(self, severity: str) -> str:
        """The `severity` label value of an alert of this level (page | ticket | info)."""
        return self.severity_labels.get(severity, severity)

    def severity_level(self, label: str) -> str:
        """The level (page | ticket | info) of a `severity` label value; unknown values pass through."""
        return next((level for level, value in self.severity_labels.items() if value == label), label)

    def dashboard(self, uid: str, **variables: str) -> str:
        """A Grafana dashboard link with its template variables set."""
        from urllib.parse import urlencode

        query = urlencode({f"var-{k}": v for k, v in variables.items()})
        return f"{self.dashboard_base_url.rstrip('/')}/d/{uid}" + (f"?{query}" if query else "")


# The same tiers as alerts/windows.yaml (a unit test keeps them equal), for installs that ship the package
# without its data files (pyproject.toml declares no package-data for alerts/windows.yaml).
_BUILTIN_WINDOWS = {
    "reference_period": "30d", "min_factor": 1.0, "for": {"page": "5m", "ticket": "15m"},
    "tiers": [
        {"name": "page-fast", "severity": "page", "budget_share": 0.02, "long_window": "1h", "short_window": "5m"},
        {"name": "page-slow", "severity": "page", "budget_share": 0.05, "long_window": "6h", "short_window": "30m"},
        {"name": "ticket-fast", "severity": "ticket", "budget_share": 0.10, "long_window": "1d",
         "short_window": "2h"},
        {"name": "ticket-slow", "severity": "ticket", "budget_share": 0.10, "long_window": "3d",
         "short_window": "6h"},
    ],
}


@cache
def default_windows() -> Windows:
    """alerts/windows.yaml, or the built-in copy of it when the file is not installed."""
    if WINDOWS_FILE.exists():
        data, _root = yaml_loader.load(WINDOWS_FILE.read_text(encoding="utf-8"), str(WINDOWS_FILE), AlertingError)
        return Windows.model_validate(data)
    return Windows.model_validate(_BUILTIN_WINDOWS)


class AlertingError(SlamonError, ValueError):
    """An alerting config that cannot be used; the message names the file, the line and the field."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any, env: Mapping[str, str], where: str = "") -> Any:
    """${NAME} / ${NAME:-default} in every string, from `env`; an unset NAME without default is an error."""
    try:
        return _expand(data, env, ())
    except _Unset as unset:
        path = ".".join(str(p) for p in unset.loc)
        path = f"{where}.{path}" if where and path else where or path
        raise AlertingError(f"{path}: {unset.message}") from None


class _Unset(Exception):
    def __init__(self, loc: tuple, name: str) -> None:
        super().__init__(name)
        self.loc = loc
        self.message = f"environment variable {name} is not set (write ${{{name}:-default}})"


def _expand(data: Any, env: Mapping[str, str], loc: tuple) -> Any:
    if isinstance(data, dict):
        return {k: _expand(v, env, (*loc, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand(v, env, (*loc, i)) for i, v in enumerate(data)]
    if isinstance(data, str):
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise _Unset(loc, name)

        return _ENV.sub(sub, data)
    return data


def parse_alerting(text: str, source: str = "<alerting>", env: Mapping[str, str] | None = None) -> Alerting:
    data, root = yaml_loader.load(text, source, AlertingError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AlertingError(f"{source}:1: expected a mapping of alerting settings")
    yaml_loader.check_version(data, root, source, AlertingError)
    prefix: tuple = ()
    if "alerting" in data and set(data) <= {"alerting", "version"}:  # the section may be nested under `alerting:`
        data, prefix = data["alerting"] or {}, ("alerting",)
        if not isinstance(data, dict):
            raise AlertingError(f"{source}:{yaml_loader.locate(root, ['alerting'])[1]}: alerting: expected a mapping")
        section = yaml_loader.locate(root, ["alerting"])[0]
        yaml_loader.check_version(data, section, source, AlertingError)
    try:
        data = _expand(data, os.environ if env is None else env, ())
    except _Unset as unset:
        _node, line = yaml_loader.locate(root, [*prefix, *unset.loc])
        raise AlertingError(f"{source}:{line}: {'.'.join(map(str, unset.loc))}: {unset.message}",
                            hint="set the variable, or give a default: ${NAME:-value}") from None
    try:
        return Alerting.model_validate(data)
    except ValidationError as err:
        raise AlertingError(yaml_loader.explain(err, root, source, prefix=prefix)) from None


def load_alerting(path: str | Path | None, env: Mapping[str, str] | None = None) -> Alerting:
    """The alerting config in `path`, or the defaults when `path` is None."""
    if path is None:
        return Alerting()
    return parse_alerting(yaml_loader.read_text(path, AlertingError), str(path), env)
