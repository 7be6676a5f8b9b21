"""Rendering the replay report: a table for people, JSON and CSV for tools."""

from __future__ import annotations

import csv
import io

import orjson

from monitor.replay import ReplayResult

CSV_COLUMNS = (
    "client", "sla", "kind", "period", "period_start", "period_end", "complete", "decided", "good", "bad",
    "compliance", "target", "met", "error_budget_remaining", "value", "unit", "projected",
    "penalty.currency", "penalty.credit_percent", "penalty.credit", "penalty.projected_credit",
    "burn_rate.1h", "burn_rate.6h", "burn_rate.24h", "open", "breaching_soon", "next_deadline_seconds",
    "unknown_seconds", "latency_seconds.p50", "latency_seconds.p90", "latency_seconds.p99", "breaches",
)


def to_json(result: ReplayResult) -> str:
    body = {"at": result.pipeline()["at"], "records": [r.as_dict() for r in result.records],
            "pipeline": result.pipeline()}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()


def to_csv(result: ReplayResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in result.records:
        flat = _flatten(record.as_dict())
        writer.writerow(["" if flat.get(c) is None else flat[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _flatten(d: dict) -> dict:
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = ";".join(map(str, value))
        else:
            flat[key] = value
    return flat


def to_table(result: ReplayResult) -> str:
    head = ("client", "sla", "period", "decided", "compliance", "value", "target", "met", "budget left",
            "projected", "credit")
    rows = [head]
    for r in result.records:
        credit = f"{r.penalty['credit']:.2f} {r.penalty['currency']}" if r.penalty else ""
        rows.append((
            r.client, r.sla, r.period + ("" if r.complete else "*"), _num(r.decided),
            _pct(r.compliance), _val(r.value, r.unit), _val(r.target, r.unit), _met(r),
            _pct(r.error_budget_remaining), _val(r.projected, r.unit), credit,
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    p = result.pipeline()
    rejected = ", ".join(f"{k} {v}" for k, v in p["rejected"].items()) or "none"
    lines.append("")
    lines.append(f"* period still running at {p['at']}.  events: {p['accepted']} accepted, "
                 f"{p['duplicates']} duplicates, {p['after_at']} after --at; rejected: {rejected}")
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _val(x: float | None, unit: str | None) -> str:
    if x is None:
        return "-"
    if unit == "seconds":
        return f"{x:.1f}s"
    return f"{x:.2f}" if unit == "score" else f"{x * 100:.2f}%"


def _met(r) -> str:
    return "yes" if r.met else "NO"
