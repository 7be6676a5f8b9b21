"""Each scoring rule of the backtest (alerts.backtest.scoring) on small hand-made histories.

Times are seconds; H is an hour. See alerts/README.md "How backtests score"."""

from __future__ import annotations

import pytest

from alerts.backtest.scoring import (
    Breach,
    BreachTracker,
    Episode,
    ItemOutcome,
    ItemSelection,
    Period,
    Settings,
    burn_episodes,
    merge_episodes,
    score,
    scoring_start,
)

H = 3600
DAY = 24 * H
T0 = 1_793_577_600  # 2026-11-02T00:00:00Z, a Monday


def ep(alert, start, end, severity="page", category="breach", client="c", sla="s", priority=None):
    return Episode(alert, severity, category, client, sla, start, start, end, priority=priority)


def item(name, created, deadline, closed, breached, priority="P1"):
    return ItemOutcome("c", "s", name, priority, created, deadline, closed, breached)


# --- item warnings against item outcomes --------------------------------------------------------------------

IMMINENT = {("SlamonBreachImminent", "c", "s", "page"): ItemSelection(within_s=30 * 60, priorities=("P1",))}


def _items(episodes, items, **kw):
    return score("x", 1, episodes, [], items=items, selections=IMMINENT, **kw)


def test_an_item_warning_before_the_breach_counts_for_recall_and_precision():
    # a 4 h ticket breached at T0 + 4 H; the imminent page fired 25 min before its deadline
    items = [item("t1", T0, T0 + 4 * H, T0 + 4 * H, True)]
    e = ep("SlamonBreachImminent", T0 + 4 * H - 25 * 60, T0 + 4 * H + 60)
    scored = _items([e], items, settings=Settings(item_min_lead_share=0.0))
    assert e.outcome == "true_positive" and e.warned == [0] and e.lead_s == 25 * 60
    s = scored.summary()["items"]
    assert (s["breached"], s["breached_warned_in_time"], s["recall_in_time"], s["precision"]) == (1, 1, 1.0, 1.0)


def test_a_warning_with_less_than_the_required_time_left_is_not_in_time():
    items = [item("t1", T0, T0 + 4 * H, T0 + 4 * H, True)]
    e = ep("SlamonBreachImminent", T0 + 4 * H - 25 * 60, T0 + 4 * H)
    s = _items([e], items).summary()["items"]  # default: a quarter of the allowed time (1 h) left
    assert e.outcome == "true_positive"
    assert (s["breached_warned"], s["breached_warned_in_time"], s["recall_in_time"]) == (1, 0, 0.0)
    s = _items([e], items, settings=Settings(item_min_lead_s=20 * 60, item_min_lead_share=0)).summary()["items"]
    assert s["breached_warned_in_time"] == 1


def test_a_warning_after_the_deadline_warns_nobody():
    items = [item("t1", T0, T0 + 4 * H, T0 + 4 * H, True)]
    e = ep("SlamonBreachImminent", T0 + 4 * H + 60, T0 + 5 * H)
    s = _items([e], items).summary()["items"]
    assert e.outcome == "no_item" and e.warned == []
    assert (s["breached"], s["breached_warned"], s["recall_in_time"], s["precision"]) == (1, 0, 0.0, None)


def test_a_warning_for_an_item_then_met_is_neither_a_hit_nor_a_proven_false_alarm():
    # answered 10 min before its deadline, after the warning: saved, or never at risk; history cannot tell
    items = [item("t1", T0, T0 + 4 * H, T0 + 4 * H - 600, False)]
    e = ep("SlamonBreachImminent", T0 + 4 * H - 20 * 60, T0 + 4 * H - 600)
    s = _items([e], items).summary()["items"]
    assert e.outcome == "met_after_warning"
    assert (s["warned"], s["warned_then_breached"], s["met_after_warning"], s["precision"]) == (1, 0, 1, 0.0)


def test_item_warnings_only_speak_of_their_selection():
    # a P3 item due within the window is not the P1 page's; an item due later than `within` is not warned yet
    items = [item("p3", T0, T0 + 2 * H, T0 + 2 * H, True, priority="P3"),
             item("late", T0, T0 + 3 * H, T0 + 3 * H, True)]
    e = ep("SlamonBreachImminent", T0 + 2 * H - 600, T0 + 2 * H)
    _items([e], items)
    assert e.outcome == "no_item"
    stage = {("SlamonItemsInLastStage", "c", "s", "ticket"): ItemSelection(stage=0.9)}
    e = ep("SlamonItemsInLastStage", T0 + 2 * H - 600, T0 + 2 * H, severity="ticket")
    score("x", 1, [e], [], items=items, selections=stage)
    assert e.warned == [0]  # p3 is past 90 % of its 2 h; "late" is at 63 % of its 3 h


def test_item_warnings_are_not_scored_against_sla_breaches():
    breach = Breach("c", "s", T0 + 2 * H, T0 + 3 * H)
    e = ep("SlamonBreachImminent", T0 + H, T0 + 2 * H)
    scored = score("x", 1, [e], [breach])  # no item outcomes in this history
    assert e.outcome == "not_scored" and scored.detected == {} and scored.summary()["items"] is None


# --- SLA-level alerts against lost periods and burn episodes ------------------------------------------------

def test_a_period_that_recovers_is_not_lost_and_its_alert_is_a_false_alarm():
    tracker = BreachTracker(Settings(min_volume=20, merge_gap_s=600))
    key = ("c", "s")
    for t, met in ((T0, 1), (T0 + H, 0), (T0 + 2 * H, 0), (T0 + 3 * H, 1), (T0 + 4 * H, 1)):
        tracker.observe(t, {key: {"met": met, "decided": 50, "period_start": T0}})
    (period,) = tracker.periods
    assert len(tracker.breaches) == 1 and not period.missed and period.lost_s is None
    e = ep("SlamonErrorBudgetBurn", T0 + H - 600, T0 + 2 * H, category="burn_rate")
    scored = score("x", 1, [e], tracker.breaches, periods=tracker.periods)
    assert scored.lost == [] and e.outcome == "false_alarm"
    assert scored.summary()["recall"] is None


def test_a_lost_period_is_detected_with_its_lead_and_paged_separately():
    tracker = BreachTracker(Settings(min_volume=20))
    key = ("c", "s")
    for t, met in ((T0, 1), (T0 + H, 1), (T0 + 2 * H, 0), (T0 + 3 * H, 0)):
        tracker.observe(t, {key: {"met": met, "decided": 50, "period_start": T0}})
    (period,) = tracker.periods
    assert period.missed and period.lost_s == T0 + 2 * H
    ticket = ep("SlamonProjectedBreach", T0 + H - 1800, T0 + 3 * H, severity="ticket")
    page = ep("SlamonErrorBudgetBurn", T0 + H, T0 + 3 * H, category="burn_rate")
    scored = score("x", 2, [ticket, page], tracker.breaches, periods=tracker.periods)
    assert scored.detected == {0: (H + 1800, "SlamonProjectedBreach/ticket")}
    assert scored.paged == {0: H}
    s = scored.summary()
    assert (s["breaches"], s["recall"], s["page_recall"], s["precision"]) == (1, 1.0, 1.0, 1.0)


def test_already_missed_alerts_never_earn_lead_time():
    breach = Breach("c", "s", T0 + 2 * H, T0 + 5 * H)
    lost = Period("c", "s", T0, T0, T0 + 5 * H, True, T0 + 2 * H)
    exhausted = ep("SlamonErrorBudgetExhausted", T0 + 2 * H + 900, T0 + 5 * H, severity="ticket")
    early = ep("SlamonErrorBudgetExhausted", T0 + H, T0 + H + 600, severity="ticket", sla="other")
    scored = score("x", 1, [exhausted, early], [breach], periods=[lost])
    assert exhausted.outcome == "confirmed" and exhausted.lead_s is None
    assert early.outcome == "false_alarm"
    assert scored.detected == {} and scored.summary()["recall"] == 0.0
    assert scored.summary()["already_missed"] == {"confirmed": 1, "false_alarm": 1}


def test_a_burn_alert_that_overlaps_a_budget_burn_episode_is_a_true_positive():
    samples = [(T0 + i * 600, 1.0 - (0.01 * max(0, i - 6) if i < 12 else 0.06)) for i in range(30)]
    (burn,) = burn_episodes("c", "s", samples, H, 0.02)
    assert burn.start_s == T0 + 8 * 600 and burn.end_s >= T0 + 11 * 600
    e = ep("SlamonErrorBudgetBurn", T0 + 9 * 600, T0 + 12 * 600, category="burn_rate")
    quiet = ep("SlamonErrorBudgetBurn", T0 + 25 * 600, T0 + 26 * 600, category="burn_rate")
    scored = score("x", 1, [e, quiet], [], periods=[], burns=[burn])
    assert (e.outcome, quiet.outcome) == ("true_positive", "false_alarm") and e.lead_s is None
    assert scored.summary()["burn_recall"] == 1.0
    # a new period resets the budget: not a burn
    assert burn_episodes("c", "s", [(T0, 0.1), (T0 + 60, 1.0), (T0 + 120, 0.995)], H, 0.02) == []


# --- warm-up, load, merging ----------------------------------------------------------------------------------

def test_scoring_starts_at_a_period_boundary_or_after_the_warm_up():
    boundaries = {("c", "month"): [T0 - 10 * DAY], ("c", "day"): [T0 - 6 * H, T0 + 18 * H],
                  ("c", "aligned"): [T0]}
    start = scoring_start(T0 - 6 * H, boundaries, [("c", "month"), ("c", "day"), ("c", "aligned"),
                                                   ("c", "rolling")], warm_up_s=DAY)
    assert start == {("c", "month"): T0 + 18 * H, ("c", "day"): T0 - 6 * H, ("c", "aligned"): T0,
                     ("c", "rolling"): T0 + 18 * H}


def test_warm_up_leaves_out_early_episodes_and_losses():
    # 2 minutes into a history that starts mid-period: a tiny denominator "misses" the target
    early = Period("c", "s", T0 - 10 * DAY, T0, T0 + 600, True, T0 + 120)
    page = ep("SlamonServiceDown", T0 + 60, T0 + 600, category="uptime")
    later = ep("SlamonErrorBudgetBurn", T0 + 2 * DAY, T0 + 2 * DAY + 600, category="burn_rate")
    scored = score("x", 1, [page, later], [Breach("c", "s", T0 + 120, T0 + 600)], periods=[early],
                   scored_from={("c", "s"): T0 + DAY})
    assert page.outcome == "warm_up" and later.outcome == "false_alarm"
    assert scored.lost == [] and scored.summary()["warm_up_episodes"] == 1


def test_pages_and_tickets_are_counted_per_client_per_week():
    eps = [ep("SlamonErrorBudgetBurn", T0 + H, T0 + 2 * H, category="burn_rate"),
           ep("SlamonProjectedBreach", T0 + 2 * H, T0 + 3 * H, severity="ticket"),
           ep("SlamonProjectedBreach", T0 + 8 * DAY, T0 + 8 * DAY + H, severity="ticket"),
           ep("SlamonWorkerDown", T0 + H, T0 + 2 * H, category="worker", client="all", sla="pipeline")]
    scored = score("x", 4, eps, [])
    assert scored.load() == [
        {"client": "all", "week": "2026-W45", "page": 1, "ticket": 0, "info": 0},
        {"client": "c", "week": "2026-W45", "page": 1, "ticket": 1, "info": 0},
        {"client": "c", "week": "2026-W46", "page": 0, "ticket": 1, "info": 0}]


def test_burn_rules_of_one_level_firing_together_are_one_episode():
    fast = ep("SlamonErrorBudgetBurn", 1000, 2000, category="burn_rate")
    slow = ep("SlamonErrorBudgetBurn", 1500, 4000, category="burn_rate")
    ticket = ep("SlamonErrorBudgetBurn", 1500, 4000, category="burn_rate", severity="ticket")
    apart = ep("SlamonErrorBudgetBurn", 9000, 9100, category="burn_rate")
    merged = merge_episodes([fast, slow, ticket, apart], 60)
    assert [(e.severity, e.start_s, e.end_s) for e in merged] == [
        ("page", 1000, 4000), ("ticket", 1500, 4000), ("page", 9000, 9100)]


@pytest.mark.parametrize("name", ["SlamonPenaltyCreditAccrued", "SlamonErrorBudgetExhausted"])
def test_already_missed_alerts_do_not_detect_a_loss_even_when_they_come_first(name):
    lost = Period("c", "s", T0, T0, T0 + 5 * H, True, T0 + 2 * H)
    e = ep(name, T0 + 2 * H, T0 + 5 * H, severity="ticket")
    scored = score("x", 1, [e], [Breach("c", "s", T0 + 2 * H, T0 + 5 * H)], periods=[lost])
    assert e.outcome == "confirmed" and scored.detected == {}


def test_the_cli_sets_warm_up_and_item_lead():
    import argparse

    from alerts.backtest.cli import add_parsers, settings_from_args

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(["backtest", "ev.jsonl", "--warm-up", "0", "--item-lead", "5m",
                              "--item-lead-share", "0.5"])
    s = settings_from_args(args)
    assert (s.warm_up_s, s.item_min_lead_s, s.item_min_lead_share) == (0, 300, 0.5)
    assert settings_from_args(parser.parse_args(["backtest", "ev.jsonl"])).warm_up_s == DAY


def test_budget_samples_wait_for_the_volume_gate():
    tracker = BreachTracker(Settings(min_volume=20))
    for t, decided in ((T0, 3), (T0 + 60, 25)):
        tracker.observe(t, {("c", "s"): {"met": 1, "decided": decided, "period_start": T0, "budget": 0.5}})
    assert tracker.budget[("c", "s")] == [(T0 + 60, 0.5)]


def test_a_period_is_lost_when_the_whole_periods_budget_is_spent_not_at_its_first_dip():
    """An outage early in the period: the period-to-date value misses at once, but the period is lost only when
    the downtime exceeds the budget of the whole (observed) period; the page in between has a lead."""
    tracker = BreachTracker(Settings(min_volume=0, uptime_min_volume_s=0))
    key = ("c", "up")
    allowed = 0.01  # 99 %: the 100 h seen allow 1 h down
    down = 0.0
    for h in range(1, 101):
        t = T0 + h * H
        if 10 <= h < 12:  # a 2-hour outage in hours 10 and 11
            down += H
        known = h * H
        budget = 1 - down / (allowed * known)
        tracker.observe(t, {key: {"met": int(budget > 0), "uptime": True, "known": known, "budget": budget,
                                  "period_start": T0}})
    (period,) = tracker.periods
    assert period.missed
    assert tracker.breaches[0].at_s == T0 + 10 * H  # the first dip: month-to-date below at once
    assert period.lost_s == T0 + 11 * H  # 2 h down > 1 h allowed over the 100 h: lost in the outage's 2nd hour
    page = ep("SlamonServiceDown", T0 + 10 * H + 120, T0 + 12 * H, category="uptime", sla="up")
    scored = score("x", 1, [page], tracker.breaches, periods=tracker.periods)
    assert page.outcome == "true_positive" and scored.paged == {0: H - 120}


def test_a_withdrawal_does_not_move_the_loss_back():
    tracker = BreachTracker(Settings(min_volume=0))
    key = ("c", "s")
    for t, bad in ((T0, 0), (T0 + H, 3), (T0 + 2 * H, 2), (T0 + 3 * H, 6)):  # 3 bad, one withdrawn, then 6
        decided = 100
        budget = 1 - bad / (0.05 * decided)
        tracker.observe(t, {key: {"met": int(budget > 0), "decided": decided, "budget": budget, "period_start": T0}})
    (period,) = tracker.periods
    assert period.missed and period.lost_s == T0 + 3 * H


def test_an_item_warning_that_began_in_the_warm_up_still_warns_the_items_due_after_it():
    """A grouped item alert can fire for days; the items it warned after scoring began count (only items whose
    deadline falls in the warm-up are left out)."""
    begin = T0 + DAY
    early = item("early", T0, T0 + H, T0 + H, True)  # due in the warm-up: not scored
    late = item("late", begin + H, begin + 2 * H, begin + 2 * H, True)
    sel = {("SlamonItemsAtRisk", "c", "s", "ticket"): ItemSelection(stage=0.75)}
    e = ep("SlamonItemsAtRisk", T0 + 600, begin + 3 * H, severity="ticket")
    quiet = ep("SlamonItemsAtRisk", T0 + 2 * H, T0 + 3 * H, severity="ticket")
    scored = score("x", 1, [e, quiet], [], items=[early, late], selections=sel,
                   scored_from={("c", "s"): begin})
    assert e.outcome == "true_positive" and e.warned == [1]
    assert quiet.outcome == "warm_up"
    assert scored.item_summary()["breached_warned_in_time"] == 1


def test_a_page_inside_the_breach_the_period_never_recovered_from_announces_the_loss():
    """The value fell below at 10 h and stayed below; the whole period's budget went only at 30 h. A page at 11 h
    that cleared at 12 h said what came true: a true positive with 19 h lead, not "late"."""
    tracker = BreachTracker(Settings(min_volume=0))
    key = ("c", "s")
    for h in range(0, 31):
        decided = 10 + 10 * h  # 310 items by the end: 5 % allowed is 15.5 bad for the whole period
        bad = 0 if h < 10 else 6 + (h - 10) * 0.5  # above 5 % of the volume so far from 10 h on; 16 at 30 h
        budget = 1 - bad / (0.05 * decided)
        tracker.observe(T0 + h * H, {key: {"met": int(budget > 0), "decided": decided, "budget": budget,
                                           "period_start": T0}})
    (period,) = tracker.periods
    assert period.missed and period.breach_s == T0 + 10 * H and period.lost_s == T0 + 30 * H
    page = ep("SlamonErrorBudgetBurn", T0 + 11 * H, T0 + 12 * H, category="burn_rate")
    early = ep("SlamonErrorBudgetBurn", T0 + 2 * H, T0 + 3 * H, category="burn_rate")  # before the breach: not it
    scored = score("x", 1, [page, early], tracker.breaches, periods=tracker.periods)
    assert page.outcome == "true_positive" and page.lead_s == period.lost_s - page.start_s
    assert early.outcome == "false_alarm"
    assert scored.paged == {0: period.lost_s - page.start_s}
