"""Rendering the monthly review (`monitor.review.figures`): HTML with inline SVG charts, PDF through headless
Chromium, CSV of the figures. The charts are drawn here (plain SVG, no plotting library): a bullet chart of
compliance vs target per SLA, a trend line per SLA over the last months, and misses per day.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import subprocess
import tempfile
from html import escape
from pathlib import Path

from monitor.contracts import CallSla, TicketSla, UptimeSla
from monitor.errors import EXIT_UNAVAILABLE, SlamonError
from monitor.review.figures import (
    AGE_BANDS,
    CSV_COLUMNS,
    MONTH_NAMES,
    ClientReview,
    Review,
    SlaReview,
    csv_rows,
    fmt_target,
    fmt_value,
    local_date,
    local_time,
    money,
    month_name,
    month_window,
    parse_month,
    shift_month,
    short_period,
    top_breaches,
)

GOOD = "#2f7d4f"
BAD = "#c2412d"
INK = "#1d2733"
MUTED = "#6b7785"
BAND = "#e9edf2"
GRID = "#d5dbe2"
LATER = "#f3eedf"  # days after the review instant
FONT = "'DejaVu Sans', 'Liberation Sans', Arial, sans-serif"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-pdf-header-footer", "--hide-scrollbars",
)
MAX_LISTED = 40  # breached ticket ids listed per SLA in the document (the CSV has them all)


class ChromiumMissing(SlamonError, RuntimeError):
    exit_code = EXIT_UNAVAILABLE


class PdfError(SlamonError, RuntimeError):
    exit_code = EXIT_UNAVAILABLE


# --- CSV -------------------------------------------------------------------------------------------------

def render_csv(review: Review) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(review):
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


# --- PDF -------------------------------------------------------------------------------------------------

def find_chromium() -> str | None:
    """$SLAMON_CHROMIUM, or the first Chromium/Chrome on PATH."""
    explicit = os.environ.get("SLAMON_CHROMIUM")
    if explicit:
        return explicit if (Path(explicit).is_file() or shutil.which(explicit)) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, timeout: float = 180.0, chromium: str | None = None) -> bytes:
    """Print the HTML to PDF with headless Chromium (A4, the document's own @page rules)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise ChromiumMissing(
            "PDF output needs Chromium, which was not found on PATH (looked for "
            f"{', '.join(CHROMIUM_NAMES)}). Install it (Debian: apt-get install chromium) or point "
            "SLAMON_CHROMIUM at the binary; --format html gives the same document without it.")
    with tempfile.TemporaryDirectory(prefix="slamon-pdf-") as tmp:
        page = Path(tmp) / "review.html"
        pdf = Path(tmp) / "review.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={pdf}", page.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not finish printing within {timeout:.0f} s") from None
        except OSError as err:
            raise ChromiumMissing(f"cannot run Chromium at {binary}: {err}") from None
        if proc.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise PdfError(f"Chromium failed to print the PDF (exit {proc.returncode}): " + " | ".join(tail))
        return pdf.read_bytes()


# --- HTML ------------------------------------------------------------------------------------------------

CSS = f"""
@page {{ size: A4; margin: 13mm 12mm 15mm 12mm;
  @bottom-left {{ content: "Monthly SLA review"; font: 7pt {FONT}; color: {MUTED}; }}
  @bottom-right {{ content: "page " counter(page) " of " counter(pages); font: 7pt {FONT}; color: {MUTED}; }} }}
* {{ box-sizing: border-box; }}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ font: 9pt/1.35 {FONT}; color: {INK}; margin: 0; }}
@media screen {{ body {{ max-width: 190mm; margin: 8mm auto; }} section {{ border-bottom: 2px solid {GRID};
  padding-bottom: 8mm; margin-bottom: 8mm; }} }}
section.client, section.overview {{ break-after: page; }}
section:last-of-type {{ break-after: auto; }}
.eyebrow {{ font-size: 7.5pt; letter-spacing: .08em; text-transform: uppercase; color: {MUTED}; margin: 0; }}
h1 {{ font-size: 17pt; margin: 1mm 0 0.5mm; }}
h2 {{ font-size: 10.5pt; margin: 5mm 0 1.5mm; padding-bottom: 0.8mm; border-bottom: 1px solid {GRID};
  break-after: avoid; }}
.sub {{ color: {MUTED}; font-size: 8pt; margin: 0 0 3mm; }}
.summary {{ display: flex; gap: 4mm; align-items: stretch; break-inside: avoid; }}
.summary .text {{ flex: 1; background: #f5f7fa; border-left: 3px solid {INK}; padding: 2.5mm 3.5mm; }}
.summary .headline {{ font-size: 10pt; font-weight: bold; margin: 0 0 1.5mm; }}
.summary ul {{ margin: 0; padding-left: 4.5mm; }}
.summary li {{ margin: 0.6mm 0; }}
.tiles {{ display: flex; flex-direction: column; gap: 2mm; width: 38mm; }}
.tile {{ border: 1px solid {GRID}; padding: 1.5mm 2.5mm; }}
.tile .k {{ font-size: 7pt; color: {MUTED}; text-transform: uppercase; letter-spacing: .05em; }}
.tile .v {{ font-size: 12pt; font-weight: bold; }}
.tile .v.bad {{ color: {BAD}; }} .tile .v.good {{ color: {GOOD}; }}
table {{ border-collapse: collapse; width: 100%; }}
th {{ text-align: left; font-size: 7.5pt; color: {MUTED}; font-weight: normal; border-bottom: 1px solid {INK};
  padding: 1mm 1.5mm; }}
td {{ border-bottom: 1px solid {GRID}; padding: 1.2mm 1.5mm; vertical-align: middle; }}
tr {{ break-inside: avoid; }}
td.num, th.num {{ text-align: right; white-space: nowrap; }}
.name {{ font-weight: bold; }} .small {{ font-size: 7.5pt; color: {MUTED}; }}
.badge {{ display: inline-block; font-size: 7pt; font-weight: bold; padding: 0.3mm 1.6mm; border-radius: 2mm;
  color: white; white-space: nowrap; }}
.badge.met {{ background: {GOOD}; }} .badge.missed {{ background: {BAD}; }} .badge.nodata {{ background: #98a2ad; }}
.periods {{ font-size: 7.5pt; line-height: 1.3; }} .periods .miss {{ color: {BAD}; font-weight: bold; }}
.grid {{ display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 3mm 6mm; }}
.chart {{ break-inside: avoid; min-width: 0; }}
.chart svg {{ width: 100%; height: auto; display: block; }}
.chart .t {{ font-size: 8.5pt; font-weight: bold; margin-bottom: 0.5mm; overflow-wrap: anywhere; }}
.chart .t span {{ font-weight: normal; color: {MUTED}; }}
.chart .v {{ font-size: 7.5pt; color: {MUTED}; margin-top: 0.5mm; }}
.appendix .ids p {{ margin: 0 0 1mm; font-size: 6.8pt; }}
.appendix .ids b {{ font-family: {FONT}; }}
.appendix .ids i {{ font-style: normal; color: {MUTED}; }}
table.scorecard td:first-child {{ width: 40mm; min-width: 36mm; }}
table.scorecard td svg {{ width: 48mm; height: auto; display: block; }}
table.groups {{ margin-bottom: 2mm; }} table.groups th.num {{ vertical-align: bottom; }}
table.groups td .small {{ white-space: nowrap; }}
table.reasons, table.backlog {{ break-inside: avoid; }}
table.reasons th.num, table.backlog th.num {{ vertical-align: bottom; }}
.appendix h3 {{ font-size: 9pt; margin: 3mm 0 1mm; }}
.glossary dt {{ font-weight: bold; float: left; clear: left; width: 34mm; }}
.glossary dd {{ margin: 0 0 1.2mm 36mm; }}
.commentary {{ border-left: 3px solid {GOOD}; background: #f4f9f6; padding: 2mm 3.5mm; margin: 2mm 0; }}
.commentary p {{ margin: 1mm 0; }}
.up {{ color: {GOOD}; }} .down {{ color: {BAD}; }}
.daily {{ break-inside: avoid; }}
.ids {{ font: 7pt/1.45 'DejaVu Sans Mono', monospace; color: #3a4450; }}
.ids span {{ white-space: nowrap; }}
.breaches p {{ margin: 1mm 0 2mm; break-inside: avoid; }}
.note {{ font-size: 7.5pt; color: {MUTED}; margin-top: 1.5mm; }}
svg text {{ font-family: {FONT}; }}
"""


def render_html(review: Review, commentary: str | None = None) -> str:
    """The review as one HTML document (print CSS for the PDF). `commentary`: the account team's text (see
    `parse_commentary`), rendered on the cover and in each client's section."""
    notes = parse_commentary(commentary)
    title = f"SLA review {month_name(review.month)}"
    body = [_overview(review, notes.get(""))]
    body.extend(_client_section(review, cr, notes.get(cr.client)) for cr in review.clients)
    appendix = _appendix(review)
    if appendix:
        body.append(appendix)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def parse_commentary(text: str | None) -> dict[str, str]:
    """The commentary file: plain text, paragraphs separated by blank lines, `- ` bullets. Text under a line
    `# CLIENT` (a client's name) goes to that client's section; text before any such line to the cover.
    Returns {"" or client: HTML}."""
    if not text:
        return {}
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            current = stripped.lstrip("#").strip()
            continue
        blocks.setdefault(current, []).append(line.rstrip())
    out = {}
    for key, lines in blocks.items():
        html = _text_html(lines)
        if html:
            out[key] = html
    return out


def _text_html(lines: list[str]) -> str:
    """Paragraphs (blank-line separated) and `- ` bullet lists, escaped."""
    html: list[str] = []
    para: list[str] = []
    bullets: list[str] = []
    for line in [*lines, ""]:
        stripped = line.strip()
        bullet = stripped.startswith(("- ", "* "))
        if (not stripped or bullet) and para:
            html.append(f"<p>{escape(' '.join(para))}</p>")
            para = []
        if (not stripped or not bullet) and bullets:
            html.append("<ul>" + "".join(f"<li>{escape(b)}</li>" for b in bullets) + "</ul>")
            bullets = []
        if bullet:
            bullets.append(stripped[2:].strip())
        elif stripped:
            para.append(stripped)
    return "".join(html)


def utc_words(at_us: int) -> str:
    """An instant for people: '30 Nov 2026 23:59 UTC'."""
    return local_time(at_us, "UTC") + " UTC"


def _overview(review: Review, commentary: str | None) -> str:
    rows = []
    for cr in review.clients:
        met, total = cr.met_count
        credits = ", ".join(money(v, c) for c, v in sorted(cr.credits.items())) or "none"
        badge = "met" if met == total else "missed"
        rows.append(
            f"<tr><td class=\"name\" style=\"white-space:nowrap\">{escape(cr.client)}</td>"
            f"<td class=\"num\"><span class=\"badge {badge}\">"
            f"{met} / {total}</span></td><td class=\"num\">{escape(credits)}</td>"
            f"<td>{escape(cr.headline)}</td></tr>")
    status = "" if review.complete else " (month to date)"
    clients = f"{len(review.clients)} client{'s' if len(review.clients) != 1 else ''}"
    return (
        f"<section class=\"overview\"><p class=\"eyebrow\">Monthly SLA review{status}</p>"
        f"<h1>{escape(month_name(review.month))}</h1>"
        f"<p class=\"sub\">{clients} · figures as of {escape(utc_words(review.at_us))} · "
        f"one section per client follows</p>"
        f"<table><thead><tr><th>Client</th><th class=\"num\">SLAs met</th><th class=\"num\">Credits owed</th>"
        f"<th>Summary</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (f"<p class=\"note\">Not in this review: {escape(', '.join(review.not_started))} (the month had not begun "
           f"in the client's timezone when the figures end).</p>" if review.not_started else "")
        + f"{_pipeline_note(review)}"
        + (f"<h2>Commentary</h2><div class=\"commentary\">{commentary}</div>" if commentary else "")
        + f"{_glossary(review)}</section>")


def _pipeline_note(review: Review) -> str:
    p = review.pipeline
    if p.get("source") == "store":
        return (f"<p class=\"note\">Source: our record of {p.get('decisions', 0):,} ticket, call, survey and audit "
                "outcomes; each is counted once, in the period it was settled in, with every later correction "
                "(a reopened ticket, a late event) applied.</p>")
    rejected = sum(p.get("rejected", {}).values())
    parts = [f"Source: {p.get('accepted', 0):,} events (ticket updates, calls, monitoring probes, surveys and "
             "audits)"]
    if p.get("duplicates"):
        parts.append(f"{p['duplicates']:,} repeated events were counted once")
    if rejected:
        parts.append(f"{rejected:,} unusable events were set aside")
    if p.get("after_at"):
        parts.append(f"{p['after_at']:,} events after the figures' cut-off time belong to later figures")
    return f"<p class=\"note\">{'; '.join(parts)}.</p>"


GLOSSARY = (
    ("Compliance", "the share of items (tickets, calls, surveys, audited items) that met the target in a contract "
                   "period: the items that met it ÷ all items counted in the period."),
    ("Contract period", "the span a target is measured over: a calendar month, an ISO week (a week belongs to the "
                        "month its Thursday falls in) or a day, in the client's timezone; or a rolling window."),
    ("Breach", "an item that missed its target: a ticket not answered or resolved by its deadline, a call answered "
               "after the threshold or abandoned."),
    ("Deadline", "the instant a ticket's clock reaches its target. Clocks count business hours only where the "
                 "contract says so, stop while the ticket waits on the customer (pause statuses), and keep their "
                 "elapsed time when the priority changes."),
    ("Counted in", "an item counts in the period in which its outcome was settled: the reply or resolution, or the "
                   "deadline for a breach."),
    ("Reopened ticket", "a resolved ticket that is reopened loses its 'met' and is judged again when it is resolved "
                        "again; a breach stays a breach."),
    ("p90", "90 % of the items took at most this long (response, resolution, wait or handle time)."),
    ("Partial period", "a period the figures cover only in part (hollow points in the trends): the data starts "
                       "after it begins, or it is still running."),
    ("Service credit", "the share of the monthly fee the contract refunds when a target is missed, per the "
                       "contract's tiers."),
)


def _glossary(review: Review) -> str:
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in GLOSSARY)
    return f"<h2>How to read this review</h2><dl class=\"glossary\">{items}</dl>"


def _client_section(review: Review, cr: ClientReview, commentary: str | None = None) -> str:
    met, total = cr.met_count
    first, last = month_days(cr)
    credits = cr.credits
    breached = sum(len(s.breached_ids) for s in cr.slas)
    status = "" if cr.complete else " · month to date"
    tiles = [
        ("SLAs met", f"{met} / {total}", "good" if met == total else "bad"),
        ("Credits owed" + ("" if cr.complete else " so far"),
         "<br>".join(escape(money(v, c)) for c, v in sorted(credits.items())) or "none", "bad" if credits else "good"),
        ("Ticket breaches", f"{breached:,}", ""),
    ]
    tile_html = "".join(f"<div class=\"tile\"><div class=\"k\">{k}</div><div class=\"v {cls}\">{v}</div></div>"
                        for k, v, cls in tiles)
    notes = "".join(f"<li>{escape(n)}</li>" for n in cr.notes)
    parts = [
        f"<section class=\"client\" id=\"{escape(cr.client)}\">",
        f"<p class=\"eyebrow\">Monthly SLA review · {escape(month_name(cr.month))}{status}</p>",
        f"<h1>{escape(cr.client)}</h1>",
        f"<p class=\"sub\">{first.day} {MONTH_NAMES[first.month - 1][:3]} – {last.day} "
        f"{MONTH_NAMES[last.month - 1][:3]} {last.year} ({escape(cr.timezone)}) · "
        + _coverage(review, cr)
        + f" · {len(cr.slas)} SLAs in the contract</p>",
        f"<div class=\"summary\"><div class=\"text\"><p class=\"headline\">{escape(cr.headline)}</p>"
        f"<ul>{notes}</ul></div><div class=\"tiles\">{tile_html}</div></div>",
    ]
    if commentary:
        parts += ["<h2>Commentary and action plan</h2>", f"<div class=\"commentary\">{commentary}</div>"]
    parts += ["<h2>Scorecard</h2>", _scorecard(cr, review.data_start_us)]
    prio = _priority_table(cr)
    if prio:
        parts += ["<h2>Tickets by priority</h2>", prio]
    groups = _group_tables(cr)
    if groups:
        parts += ["<h2>By queue and channel</h2>", groups]
    parts += [f"<h2>Trend · last {review.trend_months} months</h2>", _trend_grid(review, cr)]
    daily = [s for s in cr.slas if s.daily is not None and any(s.daily)]
    if daily:
        parts += ["<h2>Misses per day</h2>", _daily_block(cr, daily, review.at_us)]
    reasons = _breach_reason_table(cr)
    if reasons:
        parts += ["<h2>Why tickets breached</h2>", reasons]
    backlog = _backlog_table(review, cr)
    if backlog:
        parts += [f"<h2>Open tickets · as of {escape(local_time(review.at_us, cr.timezone))}</h2>", backlog]
    listed = [s for s in cr.slas if s.breached_ids]
    if listed:
        parts += ["<h2>Breached tickets</h2>", _breach_lists(cr, listed)]
    parts.append("</section>")
    return "\n".join(parts)


def _coverage(review: Review, cr: ClientReview) -> str:
    """How much of the month the figures cover, for the client's header."""
    parts = []
    if cr.data_from_us is not None:
        parts.append(f"partial month: figures from {local_time(cr.data_from_us, cr.timezone)}")
    if not cr.complete:
        parts.append(f"{'month to date, ' if not parts else ''}as of {local_time(review.at_us, cr.timezone)}")
    return escape(", ".join(parts) or "complete month")


def month_days(cr: ClientReview):
    """The first and last local day of the client's month."""
    from datetime import date, timedelta

    first = date.fromisoformat(month_window(cr.month, cr.timezone).label + "-01")
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _priority_table(cr: ClientReview) -> str:
    rows = []
    for s in cr.slas:
        for i, (priority, decided, good, bad) in enumerate(s.priorities):
            comp = good / decided if decided else None
            target = s.target
            cls = "" if comp is None or comp >= target else " style=\"color:" + BAD + "\""
            rows.append(f"<tr><td>{escape(s.display) if i == 0 else ''}</td><td>{escape(priority)}</td>"
                        f"<td class=\"num\">{decided:,.0f}</td><td class=\"num\">{bad:,.0f}</td>"
                        f"<td class=\"num\"{cls}>{escape(fmt_value(comp, 'ratio', target))}</td></tr>")
    if not rows:
        return ""
    return ("<table><thead><tr><th>SLA</th><th>Priority</th><th class=\"num\">Tickets</th>"
            "<th class=\"num\">Breached</th><th class=\"num\">Compliance</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table><p class=\"note\">Over the month's contract periods; the target "
            "applies to all priorities together (the scorecard).</p>")


GROUP_HEADINGS = {("ticket", "queue"): "Ticket queue", ("ticket", "channel"): "Ticket channel",
                  ("call", "queue"): "Call queue"}


def _group_tables(cr: ClientReview) -> str:
    """One table per ticket queue, ticket channel and call queue: a row per queue or channel, a column per SLA that
    has figures for it (an SLA that covers only some queues has none for the others). Left out when only one queue
    or channel has figures: its row would repeat the scorecard."""
    tables = []
    for (items, dimension), heading in GROUP_HEADINGS.items():
        slas = [s for s in cr.slas if _items_of(s) == items and any(g.dimension == dimension for g in s.groups)]
        names = sorted({g.name for s in slas for g in s.groups if g.dimension == dimension})
        if len(names) < 2:
            continue
        cells = {(s.sla, g.name): g for s in slas for g in s.groups if g.dimension == dimension}
        head = "".join(f"<th class=\"num\">{escape(s.display)}<br>{escape(fmt_target(s))}</th>" for s in slas)
        rows = []
        for name in names:
            row = [f"<td class=\"name\">{escape(name)}</td>"]
            for s in slas:
                g = cells.get((s.sla, name))
                row.append(f"<td class=\"num\">{_group_cell(s, g)}</td>")
            rows.append(f"<tr>{''.join(row)}</tr>")
        tables.append(f"<table class=\"groups\"><thead><tr><th>{heading}</th>{head}</tr></thead><tbody>"
                      + "".join(rows) + "</tbody></table>")
    if not tables:
        return ""
    return ("".join(tables) + "<p class=\"note\">Each SLA's result over the items of one queue or channel, over the "
            "month's contract periods; red where that result alone would miss the target, which applies to all "
            "items together (the scorecard). A dash: the SLA does not cover that queue or channel, or had no items "
            "there.</p>")


def _items_of(s: SlaReview) -> str | None:
    if isinstance(s.contract, TicketSla):
        return "ticket"
    if isinstance(s.contract, CallSla):
        return "call"
    return None


def _group_cell(s: SlaReview, g) -> str:
    if g is None:
        return "<span class=\"small\">–</span>"
    style = "" if g.met else f" style=\"color:{BAD}\""
    count = f"{g.decided:,.0f} {s.contract.item_noun}"
    if g.bad and s.contract.miss_noun:
        count += f" · {g.bad:,.0f} {s.contract.miss_noun}"
    return f"<b{style}>{escape(fmt_value(g.value, s.unit, s.target))}</b><div class=\"small\">{escape(count)}</div>"


def _status(s: SlaReview) -> str:
    if not s.has_data:
        return "<span class=\"badge nodata\">NO DATA</span>"
    if s.met:
        return "<span class=\"badge met\">MET</span>"
    if len(s.records) > 1:
        return f"<span class=\"badge missed\">MISSED {len(s.missed_records)}/{len(s.records)}</span>"
    return "<span class=\"badge missed\">MISSED</span>"


def _period_text(s: SlaReview) -> str:
    if s.period.startswith("rolling"):
        return f"rolling {s.period.removeprefix('rolling-')} to review date"
    return {"month": "monthly", "week": "weekly (ISO weeks)", "day": "daily"}.get(s.period, s.period)


def _partial(r, data_start_us: int | None) -> bool:
    """A contract period the figures cover only in part: still running, or begun before the figures start."""
    return not r.complete or (data_start_us is not None and r.start_us < data_start_us)


def _result_cell(s: SlaReview, data_start_us: int | None = None) -> str:
    if len(s.records) == 1 and s.period not in ("week", "day"):
        r = s.records[0]
        count = f"<div class=\"small\">{_decided_text(s, r.decided)}</div>" if r.decided else ""
        mark = "*" if _partial(r, data_start_us) else ""
        return f"<b>{escape(fmt_value(r.value, s.unit, s.target))}{mark}</b>{count}"
    lines = []
    for r in s.records:
        cls = "miss" if not r.met else ""
        mark = "*" if _partial(r, data_start_us) else ""
        label = r.period.split("-", 1)[1] if s.period == "week" else r.period[-2:]
        value = escape(fmt_value(r.value, s.unit, s.target))
        lines.append(f"<span class=\"{cls}\">{escape(label)}{mark} {value}</span>")
    return f"<div class=\"periods\">{'<br>'.join(lines)}</div>"


def _decided_text(s: SlaReview, decided: float) -> str:
    if isinstance(s.contract, UptimeSla):  # seconds of known state
        return f"{decided / 3600:,.1f} h measured"
    return f"{decided:,.0f} {s.contract.item_noun}"


def _credit_cell(s: SlaReview) -> str:
    if s.currency is None:
        return "<span class=\"small\">no penalty</span>"
    if not s.credits:
        return f"<span class=\"small\">{escape(s.currency)} 0</span>"
    return f"<b style=\"color:{BAD}\">{escape(money(s.credits, s.currency))}</b>"


def _scorecard(cr: ClientReview, data_start_us: int | None = None) -> str:
    prev = shift_month(cr.month, -1)
    prev_name = MONTH_NAMES[parse_month(prev)[1] - 1][:3]
    rows = []
    for s in cr.slas:
        rows.append(
            f"<tr><td><div class=\"name\">{_glued(s.display)}</div><div class=\"small\">{escape(s.sla)} · "
            f"{escape(_period_text(s))}</div></td>"
            f"<td class=\"num\">{escape(fmt_target(s))}</td>"
            f"<td class=\"num\">{_result_cell(s, data_start_us)}</td>"
            f"<td class=\"num\">{_change_cell(s, prev)}</td>"
            f"<td>{_status(s)}</td>"
            f"<td>{bullet_svg(s)}</td>"
            f"<td class=\"num\">{_credit_cell(s)}</td></tr>")
    notes = ["Bars show each contract period's value against the target (black tick); the green zone meets it.",
             f"The change is against {MONTH_NAMES[parse_month(prev)[1] - 1]} (the worst period of each month)."]
    if any(s.period == "week" for s in cr.slas):
        notes.append("Weekly SLAs list the ISO weeks whose Thursday falls in the month.")
    if any(_partial(r, data_start_us) for s in cr.slas for r in s.records):
        notes.append("* period only partly covered: still running when the figures end, or begun before they "
                     "start.")
    foot = f"<p class=\"note\">{' '.join(notes)}</p>"
    return ("<table class=\"scorecard\"><thead><tr><th>SLA</th><th class=\"num\">Target</th>"
            f"<th class=\"num\">Result</th><th class=\"num\">vs {prev_name}</th><th>Status</th>"
            "<th>Compliance vs target</th><th class=\"num\">Credit</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + foot)


def _glued(text: str) -> str:
    """Escaped, with a number and its unit kept on one line ("Service level (30 s)" never breaks before "s)")."""
    return re.sub(r"(\d) (s|%|min|h)(?!\w)", "\\1&nbsp;\\2", escape(text))


def _change_cell(s: SlaReview, prev: str) -> str:
    """Month-over-month change of the month's (worst) value: percentage points, seconds or score."""
    before = s.previous(prev)
    now = s.value
    if before is None or before[1] is None or now is None:
        return "<span class=\"small\">–</span>"
    delta = now - before[1]
    better = delta < 0 if s.lower_is_better else delta > 0
    if s.unit == "ratio":
        text = f"{delta * 100:+.1f} pt"
    elif s.unit == "seconds":
        text = f"{delta:+.1f} s" if abs(delta) < 120 else f"{delta / 60:+.1f} min"
    else:
        text = f"{delta:+.2f}"
    if abs(delta) < 1e-12 or not text.split()[0].strip("+-0."):  # rounds to zero: no "-0.0 pt"
        return "<span class=\"small\">±0</span>"
    return f"<span class=\"{'up' if better else 'down'}\">{escape(text)}</span>"


# --- charts ----------------------------------------------------------------------------------------------

def _nice_step(span: float) -> float:
    if span <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(span))
    for m in (1, 2, 2.5, 5, 10):
        if span / (m * exp) <= 5:
            return m * exp
    return 10 * exp


def value_range(s: SlaReview, values: list[float]) -> tuple[float, float]:
    """The axis [lo, hi] for an SLA's values: ratios up to 100 %, zoomed so that the target is readable."""
    vals = [v for v in values if v is not None] + [s.target]
    if s.unit == "ratio" and not s.lower_is_better:
        low = min(vals)
        lo = max(0.0, low - max(1.2 * (1 - low), 0.002))
        step = _nice_step(1 - lo) / 2
        return max(0.0, math.floor(lo / step + 1e-9) * step), 1.0
    if s.unit == "score":
        return max(1.0, math.floor((min(vals) - 0.3) * 2) / 2), 5.0
    hi = max(vals) * 1.3
    step = _nice_step(hi)
    return 0.0, math.ceil(hi / step - 1e-9) * step


def _x(v: float, lo: float, hi: float, x0: float, width: float) -> float:
    if hi <= lo:
        return x0
    return x0 + (min(max(v, lo), hi) - lo) / (hi - lo) * width


def _axis_label(v: float, s: SlaReview) -> str:
    if s.unit == "ratio":
        text = f"{v * 100:.2f}".rstrip("0").rstrip(".")
        return f"{text}%"
    if s.unit == "seconds":
        return f"{v:g}s"
    return f"{v:g}"


def bullet_svg(s: SlaReview, width: int = 205) -> str:
    """Each contract period of the month as a bar against the target tick (a bullet chart)."""
    records = [r for r in s.records]
    if len(records) > 7:  # daily SLAs: a column per day instead
        return _columns_svg(s, width)
    lo, hi = value_range(s, [r.value for r in records])
    multi = len(records) > 1
    label_w = 32 if multi else 0
    bar_h = 8 if multi else 11
    gap = 2
    top = 2
    plot_w = width - label_w - 4
    height = top + len(records) * (bar_h + gap) + 13
    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
           f"viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{escape(s.sla)} vs target\">"]
    x0 = label_w
    out.append(f"<rect x=\"{x0}\" y=\"{top - 1}\" width=\"{plot_w}\" height=\"{len(records) * (bar_h + gap) + 1}\" "
               f"fill=\"{BAND}\"/>")
    # the good side of the target, lightly shaded
    tx = _x(s.target, lo, hi, x0, plot_w)
    good_x, good_w = (x0, tx - x0) if s.lower_is_better else (tx, x0 + plot_w - tx)
    out.append(f"<rect x=\"{good_x:.1f}\" y=\"{top - 1}\" width=\"{max(good_w, 0):.1f}\" "
               f"height=\"{len(records) * (bar_h + gap) + 1}\" fill=\"#d9ece0\"/>")
    for i, r in enumerate(records):
        y = top + i * (bar_h + gap)
        if multi:
            label = r.period.split("-", 1)[1] if s.period == "week" else r.period[-5:]
            out.append(f"<text x=\"{label_w - 3}\" y=\"{y + bar_h - 1}\" font-size=\"8\" text-anchor=\"end\" "
                       f"fill=\"{MUTED}\">{escape(label)}</text>")
        if r.value is None:
            out.append(f"<text x=\"{x0 + 3}\" y=\"{y + bar_h - 1.5}\" font-size=\"8\" "
                       f"fill=\"{MUTED}\">no data</text>")
            continue
        xv = _x(r.value, lo, hi, x0, plot_w)
        color = GOOD if r.met else BAD
        out.append(f"<rect x=\"{x0}\" y=\"{y + 1.5}\" width=\"{max(xv - x0, 1):.1f}\" height=\"{bar_h - 3}\" "
                   f"fill=\"{color}\"/>")
    line_h = len(records) * (bar_h + gap)
    out.append(f"<line x1=\"{tx:.1f}\" x2=\"{tx:.1f}\" y1=\"{top - 2}\" y2=\"{top + line_h + 1}\" stroke=\"{INK}\" "
               f"stroke-width=\"2\"/>")
    base = top + line_h + 11
    target_text = f"target {_axis_label(s.target, s)}"
    half = len(target_text) * 2.5  # about half the label's width at 8 px (DejaVu Sans)
    tlabel_x = min(max(tx, x0 + half), x0 + plot_w - half)
    if tlabel_x - half > x0 + 3 + 5 * len(_axis_label(lo, s)):
        out.append(f"<text x=\"{x0}\" y=\"{base}\" font-size=\"8\" fill=\"{MUTED}\">{_axis_label(lo, s)}</text>")
    if tlabel_x + half < x0 + plot_w - 3 - 5 * len(_axis_label(hi, s)):
        out.append(f"<text x=\"{x0 + plot_w}\" y=\"{base}\" font-size=\"8\" fill=\"{MUTED}\" "
                   f"text-anchor=\"end\">{_axis_label(hi, s)}</text>")
    out.append(f"<text x=\"{tlabel_x:.1f}\" y=\"{base}\" font-size=\"8\" fill=\"{INK}\" "
               f"text-anchor=\"middle\">{target_text}</text>")
    out.append("</svg>")
    return "".join(out)


def _columns_svg(s: SlaReview, width: int) -> str:
    records = s.records
    lo, hi = value_range(s, [r.value for r in records])
    height = 42
    plot_h = 30
    bw = width / len(records)
    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
           f"viewBox=\"0 0 {width} {height}\"><rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{plot_h}\" "
           f"fill=\"{BAND}\"/>"]
    for i, r in enumerate(records):
        if r.value is None:
            continue
        frac = (min(max(r.value, lo), hi) - lo) / (hi - lo) if hi > lo else 0
        h = max(frac * plot_h, 1)
        out.append(f"<rect x=\"{i * bw + 0.5:.1f}\" y=\"{plot_h - h:.1f}\" width=\"{max(bw - 1, 0.5):.1f}\" "
                   f"height=\"{h:.1f}\" fill=\"{GOOD if r.met else BAD}\"/>")
    ty = plot_h - (s.target - lo) / (hi - lo) * plot_h if hi > lo else plot_h
    out.append(f"<line x1=\"0\" x2=\"{width}\" y1=\"{ty:.1f}\" y2=\"{ty:.1f}\" stroke=\"{INK}\" stroke-width=\"1.5\"/>")
    out.append(f"<text x=\"0\" y=\"{height - 1}\" font-size=\"8\" fill=\"{MUTED}\">daily vs target "
               f"{_axis_label(s.target, s)}</text></svg>")
    return "".join(out)


def _trend_grid(review: Review, cr: ClientReview) -> str:
    first_month = shift_month(review.month, -(review.trend_months - 1))
    start = month_window(first_month, cr.timezone).start_us
    end = max([cr.end_us] + [p.end_us for s in cr.slas for p in s.trend])
    months = [shift_month(first_month, k) for k in range(review.trend_months)]
    ticks = [(month_window(m, cr.timezone).start_us, MONTH_NAMES[parse_month(m)[1] - 1][:3]) for m in months]
    cells = []
    for s in cr.slas:
        points = [p for p in s.trend if p.value is not None]
        last = ""
        if points:
            p = points[-1]
            label = short_period(p.label) if s.period in ("week", "day") else \
                MONTH_NAMES[parse_month(p.month)[1] - 1][:3]
            last = (f" · {escape(label)} <b style=\"color:{GOOD if p.met else BAD}\">"
                    f"{escape(fmt_value(p.value, s.unit, s.target))}</b>")
        cells.append(f"<div class=\"chart\"><div class=\"t\">{escape(s.display)} <span>target "
                     f"{escape(fmt_target(s))}{last}</span></div>{trend_svg(s, start, end, ticks)}"
                     f"<div class=\"v\">{escape(_volume_line(s, months))}</div></div>")
    partial = any(p.partial and p.value is not None for s in cr.slas for p in s.trend)
    return (f"<div class=\"grid\">{''.join(cells)}</div><p class=\"note\">Each point is one contract period "
            f"(weeks for weekly SLAs; the value at each month's end for rolling windows); red points missed "
            f"the target (dashed)." + (" Hollow points are partial periods: the figures start after the period "
                                       "begins, or it is still running." if partial else "")
            + " Below each chart: items counted per month and the 90th percentile of the times measured.</p>")


def _volume_line(s: SlaReview, months: list[str]) -> str:
    """Volume per month (items decided) and p90 per month, the last three months with data."""
    shown = []
    for m in months:
        points = [p for p in s.trend if p.month == m]
        decided = sum(p.decided for p in points)
        if not decided:
            continue
        p90s = [p.p90 for p in points if p.p90 is not None]
        name = MONTH_NAMES[parse_month(m)[1] - 1][:3]
        part = f"{name} {decided:,.0f}"
        if isinstance(s.contract, UptimeSla):
            part = f"{name} {decided / 3600:,.0f} h"
        if p90s:
            part += f" (p90 {_seconds(max(p90s))})"
        if any(p.partial for p in points):
            part += " partial"
        shown.append(part)
    if not shown:
        return "no data"
    noun = "measured" if isinstance(s.contract, UptimeSla) else s.contract.item_noun
    return f"{noun}: " + " · ".join(shown[-3:])


def _seconds(v: float) -> str:
    if v < 120:
        return f"{v:.0f} s" if v >= 10 else f"{v:.1f} s"
    if v < 2 * 3600:
        return f"{v / 60:.0f} min"
    if v < 48 * 3600:
        return f"{v / 3600:.1f} h"
    return f"{v / 86400:.1f} d"


def trend_svg(s: SlaReview, start_us: int, end_us: int, ticks: list[tuple[int, str]],
              width: int = 300, height: int = 112) -> str:
    pad_l, pad_r, pad_t, pad_b = 44, 8, 6, 17
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    points = [p for p in s.trend if p.value is not None]
    lo, hi = value_range(s, [p.value for p in points])

    def px(t: float) -> float:
        return pad_l + (t - start_us) / max(end_us - start_us, 1) * pw

    def py(v: float) -> float:
        return pad_t + ph - (min(max(v, lo), hi) - lo) / (hi - lo) * ph if hi > lo else pad_t + ph

    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
           f"viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"trend of {escape(s.display)}\">",
           f"<rect x=\"{pad_l}\" y=\"{pad_t}\" width=\"{pw}\" height=\"{ph}\" fill=\"#f7f9fb\" stroke=\"{GRID}\" "
           f"stroke-width=\"0.6\"/>"]
    for t, name in ticks:
        x = px(t)
        out.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{pad_t}\" y2=\"{pad_t + ph}\" stroke=\"{GRID}\" "
                   f"stroke-width=\"0.6\"/>")
        nxt = next((u for u, _ in ticks if u > t), end_us)
        out.append(f"<text x=\"{(x + px(nxt)) / 2:.1f}\" y=\"{height - 4}\" font-size=\"10\" fill=\"{MUTED}\" "
                   f"text-anchor=\"middle\">{name}</text>")
    for v in (lo, hi):
        out.append(f"<text x=\"{pad_l - 4}\" y=\"{py(v) + 3.5:.1f}\" font-size=\"10\" fill=\"{MUTED}\" "
                   f"text-anchor=\"end\">{_axis_label(v, s)}</text>")
    ty = py(s.target)
    out.append(f"<line x1=\"{pad_l}\" x2=\"{pad_l + pw}\" y1=\"{ty:.1f}\" y2=\"{ty:.1f}\" stroke=\"{INK}\" "
               f"stroke-width=\"1\" stroke-dasharray=\"3 2\"/>")
    if lo + (hi - lo) * 0.15 < s.target < hi - (hi - lo) * 0.15:
        out.append(f"<text x=\"{pad_l - 4}\" y=\"{ty + 3.5:.1f}\" font-size=\"10\" fill=\"{INK}\" "
                   f"text-anchor=\"end\">{_axis_label(s.target, s)}</text>")
    if not points:
        out.append(f"<text x=\"{pad_l + pw / 2}\" y=\"{pad_t + ph / 2}\" font-size=\"10\" fill=\"{MUTED}\" "
                   f"text-anchor=\"middle\">no data</text></svg>")
        return "".join(out)
    # a line through consecutive periods with data; a gap where a period has none
    segment: list[str] = []
    for p in s.trend:
        if p.value is None:
            if len(segment) > 1:
                out.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{px((p.start_us + p.end_us) / 2):.1f},{py(p.value):.1f}")
    if len(segment) > 1:
        out.append(_polyline(segment))
    radius = 3 if len(points) <= 40 else 1.6
    for p in points:
        color = GOOD if p.met else BAD
        fill = "white" if p.partial else color
        out.append(f"<circle cx=\"{px((p.start_us + p.end_us) / 2):.1f}\" cy=\"{py(p.value):.1f}\" r=\"{radius}\" "
                   f"fill=\"{fill}\" stroke=\"{color}\" stroke-width=\"1.2\"/>")
    out.append("</svg>")
    return "".join(out)


def _polyline(points: list[str]) -> str:
    return f"<polyline points=\"{' '.join(points)}\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"1.1\"/>"


def _daily_block(cr: ClientReview, slas: list[SlaReview], at_us: int) -> str:
    future = _days_after(cr, at_us)
    rows = [daily_svg(s, cr, last=(i == len(slas) - 1), future=future) for i, s in enumerate(slas)]
    later = " Beige days come after the figures end." if future else ""
    first, last = month_days(cr)
    outside = any(d < first or d > last for d in cr.days)
    return (f"<div class=\"daily\">{''.join(rows)}</div><p class=\"note\">Items that missed their target (late "
            "tickets, calls over the threshold, abandoned calls, low scores, audit errors; minutes down for uptime), "
            "by local day "
            f"({escape(cr.timezone)}); grey columns are weekends; hatched days are outside that SLA's contract periods "
            f"of the month" + (" (weekly SLAs count the ISO weeks whose Thursday is in the month, so their days can "
                               "begin or end outside it)" if outside else "")
            + f". Each row has its own scale (max shown); the total equals the SLA's figures for the month.{later}</p>")


def _days_after(cr: ClientReview, at_us: int) -> int:
    """How many of the client's days start after the review instant."""
    from monitor.periods import period_of

    return sum(1 for d in cr.days if period_of(_day_start(d, cr.timezone), "day", cr.timezone).start_us > at_us)


def _day_start(d, tz: str) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from monitor.events import to_us

    return to_us(datetime(d.year, d.month, d.day, 12, tzinfo=ZoneInfo(tz)))


def daily_svg(s: SlaReview, cr: ClientReview, last: bool, width: int = 700, future: int = 0) -> str:
    label_w, total_w = 175, 95
    row_h = 30 if len(s.display) <= 27 else 38
    axis_h = 14 if last else 0
    height = row_h + axis_h
    days = cr.days
    pw = width - label_w - total_w
    bw = pw / len(days)
    values = s.daily or []
    top = max((v for v in values if v is not None), default=0) or 1
    first, last_day = month_days(cr)
    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
           f"viewBox=\"0 0 {width} {height}\" style=\"display:block\">",
           "<defs><pattern id=\"hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" "
           f"patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"{GRID}\" "
           "stroke-width=\"1.5\"/></pattern></defs>"]
    for i, d in enumerate(days):
        x = label_w + i * bw
        if i < len(values) and values[i] is None:
            out.append(f"<rect x=\"{x:.1f}\" y=\"1\" width=\"{bw:.1f}\" height=\"{row_h - 3}\" fill=\"url(#hatch)\"/>")
        elif i >= len(days) - future:
            out.append(f"<rect x=\"{x:.1f}\" y=\"1\" width=\"{bw:.1f}\" height=\"{row_h - 3}\" fill=\"{LATER}\"/>")
        elif d.weekday() >= 5:
            out.append(f"<rect x=\"{x:.1f}\" y=\"1\" width=\"{bw:.1f}\" height=\"{row_h - 3}\" fill=\"{BAND}\"/>")
        if (d == first and i) or (d == last_day and i < len(days) - 1):
            edge = x if d == first else x + bw
            out.append(f"<line x1=\"{edge:.1f}\" x2=\"{edge:.1f}\" y1=\"0\" y2=\"{row_h}\" stroke=\"{MUTED}\" "
                       "stroke-width=\"0.8\" stroke-dasharray=\"2 1.5\"/>")
    out.append(f"<line x1=\"{label_w}\" x2=\"{label_w + pw}\" y1=\"{row_h - 2}\" y2=\"{row_h - 2}\" "
               f"stroke=\"{GRID}\"/>")
    for i, v in enumerate(values):
        if not v or v <= 0:
            continue
        h = max(v / top * (row_h - 6), 1)
        out.append(f"<rect x=\"{label_w + i * bw + bw * 0.15:.1f}\" y=\"{row_h - 2 - h:.1f}\" "
                   f"width=\"{bw * 0.7:.1f}\" height=\"{h:.1f}\" fill=\"{BAD}\"/>")
    name_lines = _wrap(s.display, 27)
    for k, line in enumerate(name_lines):
        out.append(f"<text x=\"0\" y=\"{row_h / 2 - 1 - 10 * (len(name_lines) - 1 - k)}\" font-size=\"10\" "
                   f"font-weight=\"bold\" fill=\"{INK}\">{escape(line)}</text>")
    out.append(f"<text x=\"0\" y=\"{row_h / 2 + 10}\" font-size=\"8.5\" fill=\"{MUTED}\">"
               f"{escape(s.daily_unit or '')} · max {_count(top)}/day</text>")
    total = sum(v for v in values if v)
    out.append(f"<text x=\"{width}\" y=\"{row_h / 2 + 3}\" font-size=\"10\" text-anchor=\"end\" fill=\"{INK}\">"
               f"{_count(total)} total</text>")
    if last:
        for i, d in enumerate(days):
            if d.day in (1, 8, 15, 22, 29) or i == len(days) - 1:
                out.append(f"<text x=\"{label_w + (i + 0.5) * bw:.1f}\" y=\"{height - 2}\" font-size=\"9\" "
                           f"fill=\"{MUTED}\" text-anchor=\"middle\">{d.day}</text>")
    out.append("</svg>")
    return "".join(out)


def _wrap(text: str, width: int) -> list[str]:
    """At most two lines of about `width` characters (a chart label), cut at a space."""
    if len(text) <= width:
        return [text]
    cut = text.rfind(" ", 0, width + 1)
    if cut <= 0:
        cut = width
    rest = text[cut:].strip()
    return [text[:cut].strip(), rest if len(rest) <= width else rest[:width - 1] + "…"]


def _count(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or float(v).is_integer() else f"{v:,.1f}"


def _span(seconds: float | None) -> str:
    """A duration for people: 45 s, 38 min, 5.2 h."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _spread(count: int, median: float | None, p90: float | None) -> str:
    if median is None:
        return ""
    if count == 1:
        return f"<div class=\"small\">{escape(_span(median))}</div>"
    return f"<div class=\"small\">typically {escape(_span(median))}, 90 % within {escape(_span(p90))}</div>"


def _time_words(s: SlaReview) -> str:
    return "business hours" if getattr(s.contract, "time", None) == "business" else "calendar time"


def _breach_reason_table(cr: ClientReview) -> str:
    """Per ticket SLA with breaches: how each breach came about (see `figures.BreachReasons`)."""
    rows = []
    for s in cr.slas:
        br = s.breach_reasons
        if br is None:
            continue
        cells = [
            f"<td><b>{escape(s.display)}</b><div class=\"small\">time counted in {_time_words(s)}</div></td>",
            f"<td class=\"num\">{br.breached:,}</td>",
            f"<td class=\"num\">{br.open_at_deadline:,}</td>",
            f"<td class=\"num\">{br.priority_change:,}{_spread(br.priority_change, br.over_median, br.over_p90)}</td>",
            f"<td class=\"num\">{br.paused:,}{_spread(br.paused, br.paused_median, br.paused_p90)}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        return ""
    unknown = sum(s.breach_reasons.unknown for s in cr.slas if s.breach_reasons is not None)
    return (
        "<table class=\"reasons\"><thead><tr><th>SLA</th><th class=\"num\">Breached</th>"
        "<th class=\"num\">Still open at<br>the deadline</th><th class=\"num\">Priority raised<br>past "
        "the new target</th><th class=\"num\">Clock paused<br>along the way</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table><p class=\"note\">A reply or resolution at or before the deadline "
        "counts as met, so a breached ticket was still waiting when its deadline passed, or, when its priority was "
        "raised, had already taken longer than the new priority allows (it breached at the change; the figures "
        "below the count say by how much). Clock paused: part of the ticket's time did not count (waiting on the "
        "customer, or resolved and later reopened); the figures say how long it was paused. Times are counted as "
        "the SLA counts them (business hours, or calendar time around the clock). When a breached ticket was "
        "eventually answered or resolved is not part of the SLA's records, so how late the reply came is not shown."
        + (f" {unknown:,} breaches come without these details (recorded by an older version) and are counted in "
           "the total only." if unknown else "") + "</p>")


def _backlog_table(review: Review, cr: ClientReview) -> str:
    """Per ticket SLA: the tickets still open at the review instant by priority and age (`figures.open_backlog`);
    from the SLA record, the sentence saying why there is none."""
    if cr.backlog_unavailable:
        return f"<p class=\"note\">{escape(cr.backlog_unavailable)}</p>"
    slas = [s for s in cr.slas if s.backlog is not None]
    if not slas:
        return ""
    head = "".join(f"<th class=\"num\">{escape(label)}</th>" for _, label in AGE_BANDS)
    rows = []
    for s in slas:
        if not s.backlog:
            rows.append(f"<tr><td class=\"name\">{escape(s.display)}</td><td colspan=\"{len(AGE_BANDS) + 3}\" "
                        "class=\"small\">no open tickets</td></tr>")
            continue
        for i, b in enumerate(s.backlog):
            name = escape(s.display) if i == 0 else ""
            bands = "".join(f"<td class=\"num\">{n:,}</td>" if n else "<td class=\"num small\">–</td>"
                            for n in b.bands)
            past = (f"<td class=\"num\" style=\"color:{BAD}\"><b>{b.past_deadline:,}</b></td>" if b.past_deadline
                    else "<td class=\"num small\">–</td>")
            rows.append(f"<tr><td class=\"name\">{name}</td><td>{escape(b.priority)}</td>{bands}"
                        f"<td class=\"num\"><b>{b.total:,}</b></td>{past}</tr>")
    return (f"<table class=\"backlog\"><thead><tr><th>SLA</th><th>Priority</th>{head}<th class=\"num\">Open</th>"
            "<th class=\"num\">Past the<br>deadline</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "<p class=\"note\">Tickets created and not yet resolved or closed (reopened ones included) when this "
            "review was made, by how long ago they were created (calendar days) and the priority each SLA counts "
            "them under. Past the deadline: the SLA's deadline has already passed while the ticket is still open "
            "(a first-response deadline may have been missed by a ticket answered since).</p>")


FIRST_LISTED = 10  # breached tickets shown per SLA in the client's section; the appendix and the CSV list all


def _breach_lists(cr: ClientReview, slas: list[SlaReview]) -> str:
    parts = []
    for s in slas:
        ids = [item for _, item in s.breaches] or s.breached_ids
        by_priority = ", ".join(f"{p} {bad:,.0f}" for p, _, _, bad in s.priorities if bad)
        shown = top_breaches(s, FIRST_LISTED)
        first = ", ".join(f"<span>{escape(item)} <span class=\"small\">"  # one entry never splits across lines
                          + (f"{escape(s.breach_priority[item])} · " if item in s.breach_priority else "")
                          + f"{escape(local_time(at, cr.timezone))}</span></span>" for at, item in shown)
        more = len(ids) - min(len(ids), FIRST_LISTED)
        order = "highest priority first, then by breach time" if s.breach_priority else "by breach time"
        parts.append(
            f"<p><b>{escape(s.display)}</b> <span class=\"small\">{len(ids):,} tickets breached"
            + (f" · by priority: {escape(by_priority)}" if by_priority else "") + "</span><br>"
            f"<span class=\"ids\">{first}</span>"
            + (f"<br><span class=\"small\">The first {FIRST_LISTED}, {order}; all {len(ids):,} are listed in "
               "the appendix and the CSV.</span>" if more else "") + "</p>")
    return f"<div class=\"breaches\">{''.join(parts)}</div>"


def _appendix(review: Review) -> str:
    blocks = []
    for cr in review.clients:
        for s in cr.slas:
            if len(s.breaches) <= FIRST_LISTED:
                continue
            days: dict[str, list[str]] = {}
            for at, item in s.breaches:
                days.setdefault(local_date(at, cr.timezone), []).append(item)
            rows = "".join(f"<p><b>{escape(day)}</b> · {len(items)} · "
                           + ", ".join(f"<span>{escape(i)}"
                                       + (f" <i>{escape(s.breach_priority[i])}</i>" if i in s.breach_priority else "")
                                       + "</span>" for i in items) + "</p>"
                           for day, items in days.items())
            blocks.append(f"<h3>{escape(cr.client)} · {escape(s.display)} · {len(s.breaches):,} tickets</h3>"
                          f"<div class=\"ids\">{rows}</div>")
    if not blocks:
        return ""
    return ("<section class=\"appendix\"><p class=\"eyebrow\">Appendix</p><h1>Breached tickets</h1>"
            "<p class=\"sub\">Every ticket breached in the month's contract periods, by the day it breached "
            "(local to the client), in order, each with its priority; also in the CSV.</p>" + "".join(blocks)
            + "</section>")
