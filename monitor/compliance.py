"""The exact formulas of spec section 3: compliance, error budget, burn rate, penalty, projection.

Pure functions over counts so the worker, the replay and the report compute them identically.
"""

from __future__ import annotations

from monitor.contracts import Penalty


def compliance(good: float, decided: float) -> float | None:
    """good / decided; None when nothing was decided (no evidence either way)."""
    return good / decided if decided else None


def error_budget_remaining(bad: float, decided: float, target: float) -> float | None:
    """1 - bad / ((1 - target) * decided). Negative when overspent; None if the budget is zero and spent."""
    budget = (1 - target) * decided
    if budget > 0:
        return 1 - bad / budget
    return 1.0 if bad == 0 else None


def burn_rate(bad: float, decided: float, target: float) -> float | None:
    """(bad / decided in the window) / (1 - target): 1.0 spends the budget exactly over the period."""
    if not decided or target >= 1:
        return None
    return (bad / decided) / (1 - target)


def credit_percent(penalty: Penalty | None, measured: float | None, lower_is_better: bool) -> float:
    """The largest tier credit the measured value earns (0 when no tier applies or nothing measured)."""
    if penalty is None or measured is None:
        return 0.0
    earned = [
        tier.credit_percent
        for tier in penalty.tiers
        if (lower_is_better and tier.above is not None and measured > tier.above)
        or (not lower_is_better and tier.below is not None and measured < tier.below)
    ]
    return max(earned, default=0.0)


def projected_ratio(
    good: float, decided: float, recent_good: float, recent_decided: float, elapsed_share: float
) -> float | None:
    """Projected end-of-period good/decided.

    Method: volume grows linearly over the period (final volume = decided / elapsed_share), and the volume
    still to come performs like the recent window (trailing 24 h; period-to-date when the window is empty).
    """
    if not decided or elapsed_share <= 0:
        return None
    recent = recent_good / recent_decided if recent_decided else good / decided
    remaining = decided * (1 - elapsed_share) / elapsed_share
    return (good + remaining * recent) / (decided + remaining)


def projected_mean(total: float, count: float, recent_total: float, recent_count: float,
                   elapsed_share: float) -> float | None:
    """Projected end-of-period mean (ASA, AHT, CSAT mean): same volume model as `projected_ratio`."""
    if not count or elapsed_share <= 0:
        return None
    recent = recent_total / recent_count if recent_count else total / count
    remaining = count * (1 - elapsed_share) / elapsed_share
    return (total + remaining * recent) / (count + remaining)
