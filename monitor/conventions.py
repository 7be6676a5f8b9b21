"""Prometheus names, defined once: every metric family and label the workers export, and the recorded series.

The collector (`streams.metrics`) exports these families, the rule generator (`alerts.rules`), the dashboards
(`alerts.dashboards`) and the backtest (`alerts.backtest`) read them. A name changes here or nowhere.

Counter families are declared by their family name (`SLA_DECIDED = "slamon_sla_decided"`); the exposition, and
so every PromQL expression, sees the sample name with `_total` (`SLA_DECIDED_TOTAL`).

Recorded series follow Prometheus' `level:metric:operations` convention; their window is filled in with
`recorded_decided("1h")` etc. (a Prometheus duration such as `5m`, `1h`, `3d`).
"""

from __future__ import annotations

TOTAL = "_total"  # suffix of a counter's samples

# --- label names --------------------------------------------------------------------------------------------
CLIENT = "client"
SLA = "sla"
KIND = "kind"  # slamon_sla_info: the SLA kind; slamon_events_total: the event kind
PERIOD = "period"
CURRENCY = "currency"
WINDOW = "window"
QUANTILE = "quantile"
PRIORITY = "priority"
STAGE = "stage"
WITHIN = "within"
TIER = "tier"  # a burn-rate tier's name (alerts/windows.yaml), on the recorded factor
QUEUE = "queue"
SERVICE = "service"
PARTITION = "partition"
REASON = "reason"
JOB = "job"
INSTANCE = "instance"

# --- SLA figures, current period -----------------------------------------------------------------------------
SLA_INFO = "slamon_sla_info"
SLA_PERIOD_DECIDED = "slamon_sla_period_decided"
SLA_PERIOD_GOOD = "slamon_sla_period_good"
SLA_PERIOD_BAD = "slamon_sla_period_bad"
SLA_COMPLIANCE_RATIO = "slamon_sla_compliance_ratio"
SLA_TARGET_RATIO = "slamon_sla_target_ratio"
SLA_TARGET_SECONDS = "slamon_sla_target_seconds"
SLA_TARGET_SCORE = "slamon_sla_target_score"
SLA_VALUE_RATIO = "slamon_sla_value_ratio"
SLA_VALUE_SECONDS = "slamon_sla_value_seconds"
SLA_VALUE_SCORE = "slamon_sla_value_score"
SLA_MET = "slamon_sla_met"
SLA_ERROR_BUDGET_REMAINING = "slamon_sla_error_budget_remaining_ratio"
SLA_PROJECTED_RATIO = "slamon_sla_projected_ratio"
SLA_PROJECTED_SECONDS = "slamon_sla_projected_seconds"
SLA_PROJECTED_SCORE = "slamon_sla_projected_score"
SLA_BURN_RATE = "slamon_sla_burn_rate"
SLA_PERIOD_START = "slamon_sla_period_start_seconds"
SLA_PERIOD_END = "slamon_sla_period_end_seconds"
SLA_LATENCY = "slamon_sla_latency_seconds"

# --- SLA counters, all periods (families; samples carry `_total`) --------------------------------------------
SLA_DECIDED = "slamon_sla_decided"
SLA_GOOD = "slamon_sla_good"
SLA_BAD = "slamon_sla_bad"
SLA_DECIDED_TOTAL = SLA_DECIDED + TOTAL
SLA_GOOD_TOTAL = SLA_GOOD + TOTAL
SLA_BAD_TOTAL = SLA_BAD + TOTAL

# --- tickets -------------------------------------------------------------------------------------------------
SLA_OPEN_ITEMS = "slamon_sla_open_items"
SLA_AT_RISK_ITEMS = "slamon_sla_at_risk_items"
SLA_BREACHING_SOON_ITEMS = "slamon_sla_breaching_soon_items"
SLA_NEXT_DEADLINE = "slamon_sla_next_deadline_seconds"

# --- calls ---------------------------------------------------------------------------------------------------
CALLS_WAITING = "slamon_calls_waiting"
CALLS_LONGEST_WAIT = "slamon_calls_longest_wait_seconds"
SERVICE_LEVEL_WINDOW = "slamon_service_level_ratio"
ASA_WINDOW = "slamon_asa_seconds"

# --- uptime --------------------------------------------------------------------------------------------------
UPTIME_AVAILABILITY = "slamon_uptime_availability_ratio"
UPTIME_UP_SECONDS = "slamon_uptime_up_seconds"
UPTIME_DOWNTIME_SECONDS = "slamon_uptime_downtime_seconds"
UPTIME_UNKNOWN_SECONDS = "slamon_uptime_unknown_seconds"
UPTIME_SERVICE_UP = "slamon_uptime_service_up"
UPTIME_LAST_PROBE_AGE = "slamon_uptime_last_probe_age_seconds"

# --- penalties -----------------------------------------------------------------------------------------------
PENALTY_CREDIT = "slamon_penalty_credit"
PENALTY_PROJECTED_CREDIT = "slamon_penalty_projected_credit"
PENALTY_CREDIT_RATIO = "slamon_penalty_credit_ratio"
PENALTY_PROJECTED_CREDIT_RATIO = "slamon_penalty_projected_credit_ratio"

# --- pipeline health -----------------------------------------------------------------------------------------
EVENT_TIME_LAG = "slamon_event_time_lag_seconds"
EVENTS_RECEIVED = "slamon_events_received"  # counter
EVENTS = "slamon_events"  # counter
EVENTS_REJECTED = "slamon_events_rejected"  # counter
EVENTS_DUPLICATE = "slamon_events_duplicate"  # counter
EVENTS_MISROUTED = "slamon_events_misrouted"  # counter
EVENTS_ORPHANED = "slamon_events_orphaned"
EVENTS_SKIPPED = "slamon_events_skipped"  # counter
INPUT_GAPS = "slamon_input_gaps"  # counter
INPUT_REWINDS = "slamon_input_rewinds"  # counter
SLA_EVENTS = "slamon_sla_events"  # counter
OUTBOX_UNCONFIRMED = "slamon_outbox_unconfirmed"
INPUT_OFFSET = "slamon_input_offset"
CONSUMER_LAG = "slamon_consumer_lag_messages"
CHECKPOINT_AGE = "slamon_checkpoint_age_seconds"
CHECKPOINT_SIZE = "slamon_checkpoint_size_bytes"
CHECKPOINT_OFFSET = "slamon_checkpoint_offset"
ENGINE_NOW = "slamon_engine_now_seconds"
SCRAPE_DURATION = "slamon_scrape_duration_seconds"
EVENTS_RECEIVED_TOTAL = EVENTS_RECEIVED + TOTAL
EVENTS_TOTAL = EVENTS + TOTAL
EVENTS_REJECTED_TOTAL = EVENTS_REJECTED + TOTAL
EVENTS_DUPLICATE_TOTAL = EVENTS_DUPLICATE + TOTAL
EVENTS_MISROUTED_TOTAL = EVENTS_MISROUTED + TOTAL
EVENTS_SKIPPED_TOTAL = EVENTS_SKIPPED + TOTAL
INPUT_GAPS_TOTAL = INPUT_GAPS + TOTAL
INPUT_REWINDS_TOTAL = INPUT_REWINDS + TOTAL
SLA_EVENTS_TOTAL = SLA_EVENTS + TOTAL

# --- Prometheus' own series ----------------------------------------------------------------------------------
UP = "up"  # the scrape's health, per (job, instance)
WORKER_JOB = "slamon"  # the default scrape job of the workers

# --- recorded series (alerts.rules), `level:metric:operation` ------------------------------------------------
RECORD_LEVEL = "client_sla"
REC_DECIDED = f"{RECORD_LEVEL}:{SLA_DECIDED}:increase{{w}}"  # decided items (uptime: observed seconds) in w
REC_BAD = f"{RECORD_LEVEL}:{SLA_BAD}:increase{{w}}"  # bad items (uptime: down seconds) in w
REC_BURN = f"{RECORD_LEVEL}:{SLA_BURN_RATE}:{{w}}"  # (bad / decided in w) / allowed error ratio
REC_ALLOWED = f"{RECORD_LEVEL}:slamon_sla_allowed_error:ratio"  # the SLA's allowed error ratio
REC_BURN_FACTOR = f"{RECORD_LEVEL}:slamon_sla_burn_factor:tier"  # a burn tier's alert factor (labels tier, windows)


def recorded_decided(window: str) -> str:
    return REC_DECIDED.format(w=window)


def recorded_bad(window: str) -> str:
    return REC_BAD.format(w=window)


def recorded_burn_rate(window: str) -> str:
    return REC_BURN.format(w=window)
