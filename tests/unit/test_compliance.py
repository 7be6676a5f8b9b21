"""The formulas of spec section 3 and the penalty tiers."""

import pytest

from monitor.compliance import (
    burn_rate,
    compliance,
    credit_percent,
    error_budget_remaining,
    projected_mean,
    projected_ratio,
)
from monitor.contracts import Penalty
from monitor.sketch import LogSketch

PENALTY = Penalty(monthly_fee=10_000, currency="EUR",
                  tiers=[{"below": 0.95, "credit_percent": 5}, {"below": 0.9, "credit_percent": 10}])


def test_compliance_and_budget():
    assert compliance(90, 100) == 0.9 and compliance(0, 0) is None
    # target 95% of 100 -> budget 5 bad items; 2 bad leaves 60%
    assert error_budget_remaining(2, 100, 0.95) == pytest.approx(0.6)
    assert error_budget_remaining(10, 100, 0.95) == pytest.approx(-1.0)
    assert error_budget_remaining(0, 0, 0.95) == 1.0
    assert error_budget_remaining(1, 10, 1.0) is None


def test_burn_rate():
    assert burn_rate(1, 100, 0.99) == pytest.approx(1.0)
    assert burn_rate(14.4, 100, 0.99) == pytest.approx(14.4)
    assert burn_rate(0, 0, 0.99) is None


def test_penalty_tiers_take_the_largest_credit_earned():
    assert credit_percent(PENALTY, 0.96, False) == 0
    assert credit_percent(PENALTY, 0.93, False) == 5
    assert credit_percent(PENALTY, 0.85, False) == 10
    assert credit_percent(PENALTY, None, False) == 0
    assert credit_percent(None, 0.5, False) == 0


def test_penalty_above_for_lower_is_better_kinds():
    asa = Penalty(monthly_fee=1, currency="USD", tiers=[{"above": 30, "credit_percent": 2}])
    assert credit_percent(asa, 31, True) == 2 and credit_percent(asa, 30, True) == 0


def test_projection_uses_linear_volume_and_recent_quality():
    # Half-way through: 100 decided, 90 good; recent window 50% good -> 100 more at 50%: (90 + 50) / 200.
    assert projected_ratio(90, 100, 5, 10, 0.5) == pytest.approx(0.7)
    # No recent decisions: period-to-date quality continues.
    assert projected_ratio(90, 100, 0, 0, 0.5) == pytest.approx(0.9)
    assert projected_ratio(0, 0, 0, 0, 0.5) is None
    assert projected_mean(300, 10, 40, 1, 0.5) == pytest.approx((300 + 10 * 40) / 20)


def test_sketch_quantiles_within_relative_accuracy_and_retractable():
    s = LogSketch()
    for v in range(1, 1001):
        s.add(float(v))
    assert s.quantile(0.5) == pytest.approx(500, rel=0.02)
    assert s.quantile(0.99) == pytest.approx(990, rel=0.02)
    for v in range(501, 1001):
        s.add(float(v), -1)
    assert s.count == 500 and s.quantile(0.99) == pytest.approx(495, rel=0.02)
    other = LogSketch()
    other.add(0.0)
    s.merge(other)
    assert s.count == 501 and s.quantile(0) == 0.0
