"""The monthly review (`slamon report`): figures equal the replay's records, the summary names what was
missed, the month's contract periods, HTML/CSV/PDF rendering."""

from __future__ import annotations

import csv
import io
import os
import xml.etree.ElementTree as ET
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from monitor.contracts import Rolling, load_contracts, parse_contracts
from monitor.engine import Engine
from monitor.events import format_us, to_us
from monitor.periods import PeriodWindow
from monitor.replay import replay_lines
from monitor.review.figures import (
    ReviewError,
    build_review,
    fmt_value,
    month_of_window,
    review_at,
    top_breaches,
    windows_of_month,
)
from monitor.review.groups import ReviewEngine
from monitor.review.render import find_chromium, html_to_pdf, render_csv, render_html
from monitor.simulation.generator import HOUR_US, GeneratorConfig, Scenario, generate
from slamon.review_cli import main as review_main
from slamon.review_cli import newest_event_us
from tests.builders import call, ticket

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"
MONTH = "2026-11"


def _us(text: str) -> int:
    return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))


# --- a generated history: the end of October and the first days of November ------------------------------

@pytest.fixture(scope="module")
def history():
    """Six days of traffic for the example contracts (every SLA kind, weekly and rolling periods), with an
    IVR outage and a staffing drop in November: a month-to-date review with missed SLAs."""
    contracts = load_contracts(EXAMPLES)
    start = _us("2026-10-29T00:00:00Z")
    cfg = GeneratorConfig(
        start_us=start, duration_us=6 * 24 * HOUR_US, seed=3, tickets_per_hour=5, calls_per_hour=10,
        ticket_breach_rate=0.1,
        scenarios=[Scenario("outage", "globex-bank", _us("2026-11-02T14:00:00Z"), 3 * HOUR_US, service="ivr"),
                   Scenario("staffing_drop", "acme-retail", _us("2026-11-03T07:00:00Z"), 6 * HOUR_US, 0.3)],
    )
    lines = [orjson.dumps(e) for e in generate(contracts, cfg)]
    newest = max(_us(orjson.loads(line)["ts"]) for line in lines)
    at = review_at(contracts, MONTH, newest_us=newest)
    engine = ReviewEngine(contracts)
    result = replay_lines(lines, contracts, at, engine)
    return contracts, lines, newest, result, build_review(result, engine, MONTH)


def test_figures_equal_the_replay_records(history):
    contracts, lines, newest, _, built = history
    assert built.at_us == newest  # the events stop before the month ends: month to date
    expected = replay_lines(lines, contracts, built.at_us).records  # a fresh replay, as `slamon replay --at`
    index = {(r.client, r.sla, r.period): r for r in expected}
    checked = 0
    for cr in built.clients:
        client = contracts.clients[cr.client]
        for s in cr.slas:
            sla = next(x for x in client.slas if x.name == s.sla)
            # every record of the month's contract periods is in the review ...
            if isinstance(sla.period, Rolling):
                wanted = {r.period for r in expected if (r.client, r.sla) == (cr.client, s.sla)}
            else:
                wanted = {r.period for r in expected if (r.client, r.sla) == (cr.client, s.sla)
                          and month_of_window(PeriodWindow(r.period, 0, 0), sla.period) == MONTH}
            assert wanted <= {r.period for r in s.records}, (cr.client, s.sla)
            assert wanted, (cr.client, s.sla)
            # ... with exactly the replay's figures
            for r in s.records:
                key = (cr.client, s.sla, r.period)
                if key in index:
                    assert r.as_dict() == index[key].as_dict(), key
                    checked += 1
                else:  # a period without decisions, which the report does not list
                    assert r.decided == 0 and r.met and r.value is None, key
    assert checked >= 17  # every (client, sla) of the contracts has at least one record in November


def test_summary_names_every_missed_sla_and_the_credits(history):
    built = history[4]
    missed_somewhere = False
    for cr in built.clients:
        met, total = cr.met_count
        assert cr.headline.startswith(f"{met} of {total} SLAs met in November 2026 so far")
        for s in cr.slas:
            if s.has_data and not s.met:
                missed_somewhere = True
                assert f"{s.display} missed" in cr.headline
                assert any(n.startswith(f"{s.display} missed") for n in cr.notes)
                if s.credits:
                    assert f"credit {s.currency} {s.credits:,.0f}" in cr.headline
            elif s.has_data:
                assert f"{s.display} missed" not in cr.headline
        for currency, amount in cr.credits.items():
            assert f"{currency} {amount:,.0f}" in cr.notes[-1]
        assert cr.notes[0].startswith("Month to date")
    assert missed_somewhere
    globex = next(c for c in built.clients if c.client == "globex-bank")
    ivr = next(s for s in globex.slas if s.sla == "ivr-uptime")
    assert not ivr.met and ivr.daily[globex.days.index(date(2026, 11, 2))] == pytest.approx(180, abs=2)  # the 3 h
    # outage on 2 Nov (New York)


def assert_counts_agree(review) -> int:
    """The count cross-checks of issue 15: inside one review, the misses per day add up to the bad decisions of
    the SLA's contract periods, which for ticket SLAs is the number of breached tickets listed, the breach list
    and the per-priority table agree, and the headline's numbers come from the same figures."""
    checked = 0
    for cr in review.clients:
        for s in cr.slas:
            if s.daily is not None:
                assert len(s.daily) == len(cr.days)
            if s.daily is None or s.period.startswith("rolling") or s.kind == "uptime":
                continue
            bad = sum(r.bad for r in s.records)
            assert sum(v for v in s.daily if v) == bad, (cr.client, s.sla)
            if s.contract.has_item_clocks:
                ids = sorted(i for r in s.records for i in r.breaches)
                assert sorted(i for _, i in s.breaches) == ids == s.breached_ids
                assert len(ids) == bad, (cr.client, s.sla)
                assert sum(b for _, _, _, b in s.priorities) == bad
                assert sum(d for _, d, _, _ in s.priorities) == s.decided
            checked += 1
    return checked


def test_breaches_and_daily_misses_agree_with_the_records(history):
    assert assert_counts_agree(history[4]) >= 8


def test_html_parses_with_one_section_per_client(history):
    built = history[4]
    html = render_html(built)
    checker = _HtmlChecker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], checker.stack
    assert checker.sections == len(built.clients)
    assert checker.svgs >= sum(len(c.slas) for c in built.clients) * 2  # bullet + trend per SLA
    for svg in checker.svg_texts:  # the inline charts are well-formed XML
        ET.fromstring(svg)
    for cr in built.clients:
        assert cr.headline.replace("&", "&amp;") in html


def test_csv_has_the_records_and_every_breached_ticket(history):
    built = history[4]
    rows = list(csv.DictReader(io.StringIO(render_csv(built))))
    periods = [r for r in rows if r["section"] == "period"]
    assert len(periods) == sum(len(s.records) for c in built.clients for s in c.slas)
    by_key = {(r["client"], r["sla"], r["period"]): r for r in periods}
    for cr in built.clients:
        for s in cr.slas:
            for rec in s.records:
                row = by_key[(cr.client, s.sla, rec.period)]
                assert float(row["decided"]) == rec.decided
                assert row["met"] == str(rec.met)
                assert (row["breaches"].split(";") if row["breaches"] else []) == (rec.breaches or [])
    assert {r["client"] for r in rows if r["section"] == "summary"} == {c.client for c in built.clients}
    assert any(r["section"] == "trend" for r in rows)


# --- exact wording on a hand-made history ---------------------------------------------------------------

SMALL = """
clients:
  acme:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h}, objective: 0.9, time: calendar,
         penalty: {monthly_fee: 10000, currency: EUR, tiers: [{below: 0.9, credit_percent: 5}]}}
      - {name: sl, kind: service_level, target: 0.8, within: 20s, period: week}
"""


def _small_events() -> list[bytes]:
    events = [
        call("2026-10-14T10:00:00Z", "c0", "offered"), call("2026-10-14T10:01:00Z", "c0", "answered"),  # W42 missed
        ticket("2026-10-20T09:00:00Z", "T0", "created", priority="P1"),
        ticket("2026-10-20T09:30:00Z", "T0", "agent_reply"),
        ticket("2026-11-02T09:00:00Z", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:30:00Z", "T1", "agent_reply"),
        ticket("2026-11-02T10:00:00Z", "T2", "created", priority="P1"),  # breached at 11:00
        ticket("2026-11-02T12:00:00Z", "T2", "agent_reply"),
        call("2026-11-03T10:00:00Z", "c1", "offered"), call("2026-11-03T10:00:10Z", "c1", "answered"),
        call("2026-12-02T10:00:00Z", "c9", "offered"),  # after the month: not applied
    ]
    return [orjson.dumps(e) for e in events]


def test_review_of_a_complete_month_words_and_figures():
    contracts = parse_contracts(SMALL)
    lines = _small_events()
    at = review_at(contracts, MONTH, newest_us=_us("2026-12-02T10:00:00Z"))
    assert format_us(at) == "2026-11-30T23:59:59.999999Z"  # the month's end (its last week ended on the 29th)
    engine = Engine(contracts)
    result = replay_lines(lines, contracts, at, engine)
    (cr,) = build_review(result, engine, MONTH).clients
    assert cr.headline == "1 of 2 SLAs met in November 2026; First response missed at 50.0 % vs 90 % (credit " \
                          "EUR 500); Service level (20 s) recovered from October."
    fr, sl = cr.slas
    assert [r.period for r in fr.records] == ["2026-11"] and fr.records[0].complete
    assert [i for _, i in fr.breaches] == ["T2"] and fr.breaches[0][0] == _us("2026-11-02T11:00:00Z")
    assert fr.daily[1] == 1 and sum(fr.daily) == 1
    assert [r.period for r in sl.records] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert sl.met and sl.records[0].value == 1.0 and sl.records[1].decided == 0
    assert [(p.label, p.met) for p in sl.trend if p.decided] == [("2026-W42", False), ("2026-W45", True)]
    assert cr.credits == {"EUR": 500.0}
    assert "No data" not in " ".join(cr.notes)
    assert cr.notes[-1] == "Service credits owed for November 2026: EUR 500."


def test_contract_periods_of_a_month():
    tz = "Europe/Berlin"
    assert [w.label for w in windows_of_month("2026-11", "week", tz)] == [
        "2026-W45", "2026-W46", "2026-W47", "2026-W48"]  # W44 (26 Oct-1 Nov) has its Thursday in October
    assert [w.label for w in windows_of_month("2026-12", "week", tz)] == [
        "2026-W49", "2026-W50", "2026-W51", "2026-W52", "2026-W53"]  # W53 ends on 3 January 2027
    assert len(windows_of_month("2026-02", "day", tz)) == 28
    assert [w.label for w in windows_of_month("2026-11", "month", tz)] == ["2026-11"]
    contracts = load_contracts(EXAMPLES)
    # the latest end: New York's month end (05:00 UTC on 1 December); December: W53 ends 4 Jan 2027 00:00 IST
    assert format_us(review_at(contracts, "2026-11")) == "2026-12-01T04:59:59.999999Z"
    assert format_us(review_at(contracts, "2026-12")) == "2027-01-04T04:59:59.999999Z"
    assert format_us(review_at(contracts, "2026-12", ["zenith-health"])) == "2027-01-03T18:29:59.999999Z"


def test_numbers_for_people():
    assert fmt_value(0.864, "ratio", 0.9) == "86.4 %"
    assert fmt_value(0.89996, "ratio", 0.9) == "89.996 %"  # never reads like the target it missed
    assert fmt_value(0.99942, "ratio", 0.9995) == "99.94 %"
    assert fmt_value(28.44, "seconds") == "28.4 s" and fmt_value(300.5, "seconds") == "5.0 min"
    assert fmt_value(None, "ratio") == "no data"


def test_errors_are_clear():
    contracts = parse_contracts(SMALL)
    engine = Engine(contracts)
    result = replay_lines(_small_events()[:2], contracts, None, engine)
    with pytest.raises(ReviewError, match="before November 2026 starts"):
        build_review(result, engine, MONTH)
    with pytest.raises(ReviewError, match="expects a month like 2026-11"):
        build_review(result, engine, "2026-13")
    with pytest.raises(ReviewError, match="not in the contracts"):
        build_review(result, engine, "2026-10", clients=["nobody"])


# --- command line ----------------------------------------------------------------------------------------

@pytest.fixture
def small_files(tmp_path):
    contracts = tmp_path / "c.yaml"
    contracts.write_text(SMALL)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(_small_events()) + b"\n")
    return contracts, events


def test_cli_html_and_csv(small_files, tmp_path, capsys):
    contracts, events = small_files
    assert newest_event_us(str(events)) == _us("2026-12-02T10:00:00Z")
    out = tmp_path / "r.html"
    assert review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts),
                        "--format", "html", "-o", str(out), "--no-progress"]) == 0
    assert "First response missed at 50.0 % vs 90 %" in out.read_text()
    assert review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts),
                        "--format", "csv", "--no-progress"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["breaches"] for r in rows if r["sla"] == "fr" and r["section"] == "period"] == ["T2"]


def test_cli_commentary_goes_into_the_review(small_files, tmp_path, capsys):
    contracts, events = small_files
    notes = tmp_path / "notes.txt"
    notes.write_text("A quiet month.\n\n# acme\nT2 waited for a supplier:\n- new escalation path\n", encoding="utf-8")
    out = tmp_path / "r.html"
    assert review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts), "--commentary",
                        str(notes), "-o", str(out), "--no-progress"]) == 0
    html = out.read_text()
    assert "A quiet month." in html.split('id="acme"')[0]
    assert "<li>new escalation path</li>" in html.split('id="acme"')[1]
    notes.write_text("# acme-typo\nThis text would be lost.\n", encoding="utf-8")
    assert review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts), "--commentary",
                        str(notes), "-o", str(out), "--no-progress"]) == 2
    assert "no client 'acme-typo'" in capsys.readouterr().err


def test_cli_pdf_without_chromium_says_what_to_do(small_files, tmp_path, monkeypatch, capsys):
    contracts, events = small_files
    monkeypatch.setenv("SLAMON_CHROMIUM", str(tmp_path / "no-such-chromium"))
    code = review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts),
                        "--format", "pdf", "-o", str(tmp_path / "r.pdf"), "--no-progress"])
    assert code == 4  # EXIT_UNAVAILABLE: a tool slamon needs is missing
    err = capsys.readouterr().err
    assert "needs Chromium" in err and "apt-get install chromium" in err
    assert not (tmp_path / "r.pdf").exists()


def test_cli_rejects_a_bad_month_and_an_unknown_client(small_files, capsys):
    contracts, events = small_files
    assert review_main(["report", str(events), "--period", "Nov", "--contracts", str(contracts)]) == 2
    assert review_main(["report", str(events), "--period", MONTH, "--contracts", str(contracts),
                        "--client", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "2026-11" in err and "'nobody'" in err


@pytest.mark.slow
def test_pdf_renders(history):
    if find_chromium() is None:
        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip().lower() in ("", "0", "false", "no"):
            pytest.skip("Chromium not installed (apt-get install chromium); set SLAMON_REQUIRE_SERVICES=1 to fail")
        pytest.fail("Chromium not installed but SLAMON_REQUIRE_SERVICES is set")
    pdf = html_to_pdf(render_html(history[4]))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) > 20_000


class _HtmlChecker(HTMLParser):
    VOID = frozenset({"meta", "br", "link", "img", "hr", "input"})  # SVG elements here are self-closed

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.sections = self.svgs = 0
        self.svg_texts: list[str] = []
        self._svg_start: int | None = None
        self._raw = ""

    def feed(self, data: str) -> None:
        self._raw = data
        super().feed(data)

    def handle_starttag(self, tag, attrs):
        if tag == "section" and ("class", "client") in attrs:
            self.sections += 1
        if tag == "svg":
            self.svgs += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def close(self):
        super().close()
        start = 0
        while (i := self._raw.find("<svg", start)) >= 0:
            j = self._raw.index("</svg>", i) + len("</svg>")
            self.svg_texts.append(self._raw[i:j])
            start = j


def test_tables_by_queue_and_channel(history):
    """Ticket queues and channels and call queues, per SLA, over the month's contract periods: they add up to the
    SLA's figures (every call has a queue; acme-retail's tickets each have a channel, globex-bank's a queue)."""
    built = history[4]
    acme = next(c for c in built.clients if c.client == "acme-retail")
    globex = next(c for c in built.clients if c.client == "globex-bank")
    for s in [*acme.slas, *globex.slas]:
        if not s.groups:
            continue
        for dimension in {g.dimension for g in s.groups}:
            rows = [g for g in s.groups if g.dimension == dimension]
            assert sum(g.decided for g in rows) == s.decided, (s.sla, dimension)
            if s.contract.has_item_clocks:
                assert sum(g.bad for g in rows) == len(s.breached_ids), (s.sla, dimension)
    by_sla = {(c.client, s.sla): {(g.dimension, g.name) for g in s.groups} for c in (acme, globex) for s in c.slas}
    assert by_sla[("acme-retail", "phone-service-level")] == {("queue", "orders"), ("queue", "returns")}
    assert by_sla[("acme-retail", "first-response")] == {("channel", "email"), ("channel", "web")}
    assert by_sla[("globex-bank", "fraud-resolution")] == {("queue", "fraud")}
    assert by_sla[("globex-bank", "first-response")] == set()  # a rolling window: no table, as by priority
    html = render_html(built)
    section = html.split('id="acme-retail"')[1].split("</section>")[0]
    assert "By queue and channel" in section and "Call queue" in section and "Ticket channel" in section
    for s in [*acme.slas, *globex.slas]:  # breached tickets: each with its priority, the highest shown first
        assert set(s.breach_priority) == {item for _, item in s.breaches}
        shown = [s.breach_priority[item] for _, item in top_breaches(s, 10)]
        assert shown == sorted(shown, key=lambda p: int(p[1:])), (s.sla, shown)
    assert "highest priority first" in section
    rows = list(csv.DictReader(io.StringIO(render_csv(built))))
    assert {r["group"] for r in rows if r["section"] == "queue" and r["sla"] == "phone-service-level"} == {"orders",
                                                                                                   "returns"}


def test_a_month_the_figures_cover_in_part_is_marked():
    """Events that start after the month began: the notes, the header and the scorecard say so."""
    contracts = parse_contracts(SMALL)
    lines = _small_events()[4:]  # from 2 November
    engine = ReviewEngine(contracts)
    result = replay_lines(lines, contracts, review_at(contracts, MONTH), engine)
    review = build_review(result, engine, MONTH)
    (cr,) = review.clients
    assert cr.data_from_us == _us("2026-11-02T09:30:00Z")  # the first decision (a 15-minute bucket)
    assert any(n.startswith("Partial month: the figures start on 2 Nov 2026 09:30 (UTC)") for n in cr.notes)
    html = render_html(review)
    assert "partial month: figures from 2 Nov 2026 09:30" in html
    assert "50.0 %*" in html and "* period only partly covered" in html
    whole = build_review(replay_lines(_small_events(), contracts, result.at_us, e := ReviewEngine(contracts)), e,
                         MONTH)
    assert whole.clients[0].data_from_us is None and "Partial month" not in render_html(whole)


def test_a_client_whose_month_has_not_begun_is_left_out_and_named():
    contracts = parse_contracts(SMALL.replace("clients:\n", "clients:\n  tokyo:\n    timezone: Asia/Tokyo\n"
                                              "    slas:\n      - {name: fr, kind: first_response, "
                                              "target: {P1: 1h}, objective: 0.9, time: calendar}\n", 1))
    lines = [orjson.dumps(ticket("2026-10-31T16:00:00Z", "K1", "created", priority="P1") | {"client": "tokyo"}),
             orjson.dumps(ticket("2026-10-31T16:10:00Z", "K1", "agent_reply") | {"client": "tokyo"})]
    engine = Engine(contracts)
    result = replay_lines(lines, contracts, None, engine)  # ends 16:10 UTC: 1 November 01:10 in Tokyo
    review = build_review(result, engine, MONTH)
    assert [c.client for c in review.clients] == ["tokyo"] and review.not_started == ["acme"]
    assert review.clients[0].headline == "1 of 1 SLAs met in November 2026 so far."
    assert "Not in this review: acme" in render_html(review)


def test_a_document_a_client_can_be_handed(history):
    """Issue 15's review defects: names people read (no two rows titled alike, no slugs as headings), no internal
    words, partial periods marked, breached tickets summarised with the full list in an appendix, commentary."""
    built = history[4]
    commentary = "Overall a steady month.\n\n# globex-bank\nThe IVR outage on 2 November:\n- root cause found\n" \
                 "- <b>fixed</b>\n"
    html = render_html(built, commentary=commentary)
    for cr in built.clients:
        names = [s.display for s in cr.slas]
        assert len(names) == len(set(names)), names
        for s in cr.slas:
            assert f">{s.display} <span>target" in html  # the trend chart's title
    globex = next(c for c in built.clients if c.client == "globex-bank")
    assert {"Fraud resolution", "Dispute resolution"} <= {s.display for s in globex.slas}
    for word in ("slamon replay", "error budget", "--at"):
        assert word not in html
    assert f"figures as of {format_us(built.at_us)}" not in html and "T00:00:00Z" not in html.split("<body>")[1]
    assert "How to read this review" in html and "Partial period" in html
    assert "Overall a steady month." in html and "<li>&lt;b&gt;fixed&lt;/b&gt;</li>" in html
    assert html.index("The IVR outage") > html.index('id="globex-bank"')
    partial = [p for c in built.clients for s in c.slas for p in s.trend if p.partial and p.value is not None]
    assert partial  # the history starts on 29 October: October is partial, and November is running
    assert "Hollow points are partial periods" in html
    listed = [s for c in built.clients for s in c.slas if len(s.breaches) > 10]
    if listed:
        assert "Appendix" in html
        for s in listed:
            assert all(item in html for _, item in s.breaches)


# --- breach reasons and the open-ticket backlog, on a hand-made month -------------------------------------

REASONS = """
reopen_window: 3d
clients:
  acme:
    timezone: UTC
    slas:
      - {name: res, kind: resolution, target: {P1: 4h, P2: 8h, P3: 24h}, objective: 0.9, time: calendar,
         pause_statuses: [waiting_on_customer]}
"""


def _reasons_review(engine_class=ReviewEngine):
    contracts = parse_contracts(REASONS)
    events = [
        ticket("2026-11-02T00:00:00Z", "R1", "created", priority="P3"),  # breaches on the 3rd, still open
        ticket("2026-11-02T00:00:00Z", "R2", "created", priority="P3"),
        ticket("2026-11-02T10:00:00Z", "R2", "priority", priority="P1"),  # 10 h > 4 h: breached now, 6 h past
        ticket("2026-11-02T12:00:00Z", "R2", "resolved"),
        ticket("2026-11-10T00:00:00Z", "R3", "created", priority="P2"),
        ticket("2026-11-10T01:00:00Z", "R3", "status", status="waiting_on_customer"),
        ticket("2026-11-10T05:00:00Z", "R3", "status", status="open"),  # 4 h paused: breaches at 12:00
        ticket("2026-11-11T00:00:00Z", "R3", "resolved"),
        ticket("2026-11-28T00:00:00Z", "R5", "created", priority="P1"),
        ticket("2026-11-28T01:00:00Z", "R5", "resolved"),  # met, then reopened: its clock runs again from 1 h
        ticket("2026-11-29T00:00:00Z", "R5", "reopened"),  # breaches at 03:00 after 23 h resolved (paused)
        ticket("2026-11-30T20:00:00Z", "R4", "created", priority="P2"),  # open, due on Dec 1
        ticket("2026-11-30T21:00:00Z", "R6", "created", priority="P2"),
        ticket("2026-11-30T22:00:00Z", "R6", "resolved"),
    ]
    lines = [orjson.dumps(e) for e in events]
    at = review_at(contracts, MONTH, newest_us=_us("2026-12-02T00:00:00Z"))
    engine = engine_class(contracts)
    result = replay_lines(lines, contracts, at, engine)
    return build_review(result, engine, MONTH)


def test_breach_reasons_and_backlog():
    review = _reasons_review()
    (s,) = review.clients[0].slas
    assert sorted(item for _, item in s.breaches) == ["R1", "R2", "R3", "R5"]
    r = s.breach_reasons
    assert (r.breached, r.open_at_deadline, r.priority_change, r.paused, r.unknown) == (4, 3, 1, 2, 0)
    assert r.over_median == r.over_p90 == 6 * 3600  # SLA time past the new target at the change
    assert (r.paused_median, r.paused_p90) == (4 * 3600, 23 * 3600)  # nearest rank: actual values
    rows = {b.priority: (b.bands, b.past) for b in s.backlog}
    assert rows == {"P1": ([0, 1, 0, 0, 0], [0, 1, 0, 0, 0]),  # R5 reopened 2-3 days after its creation
                    "P2": ([1, 0, 0, 0, 0], [0, 0, 0, 0, 0]),  # R4, not due yet; R6 resolved
                    "P3": ([0, 0, 0, 1, 0], [0, 0, 0, 1, 0])}  # R1, 29 days old
    assert [b.priority for b in s.backlog] == ["P1", "P2", "P3"]
    html = render_html(review)
    assert "Why tickets breached" in html and "Open tickets · as of 30 Nov 2026 23:59" in html
    assert "time counted in calendar time" in html and "typically 4.0 h, 90 % within 23.0 h" in html
    rows = list(csv.DictReader(io.StringIO(render_csv(review))))
    reasons = {r["group"]: (r["bad"], r["median"], r["p90"]) for r in rows if r["section"] == "breach_reason"}
    assert reasons == {"open_at_deadline": ("3", "", ""), "priority_change": ("1", "21600.0", "21600.0"),
                       "paused": ("2", "14400.0", "82800.0")}
    backlog = [(r["group"], r["age_band"], r["open"], r["past_deadline"]) for r in rows if r["section"] == "backlog"]
    assert len(backlog) == 3 * 5 and ("P3", "7–30 days", "1", "1") in backlog


def test_a_plain_engine_gives_no_breach_reasons():
    (s,) = _reasons_review(Engine).clients[0].slas
    assert s.breaches and s.breach_reasons is None and s.backlog  # the backlog needs only the tickets
