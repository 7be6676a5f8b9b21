"""Durations as contracts write them: "90s", "30m", "4h", "2d", "1h30m", or a number of seconds."""

from __future__ import annotations

import re

US = 1_000_000
_UNITS = {"ms": US // 1000, "s": US, "m": 60 * US, "h": 3600 * US, "d": 86400 * US, "w": 7 * 86400 * US}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_us(value: str | int | float) -> int:
    """Microseconds in a duration; raises ValueError with a message a contract author can act on."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '30m', got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return round(value * US)
    text = value.strip().replace(" ", "")
    pos, total = 0, 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration like '90s', '30m', '4h', '2d' or '1h30m', got {value!r}")
    return total


def format_duration_us(us: int) -> str:
    if us % _UNITS["d"] == 0 and us:
        return f"{us // _UNITS['d']}d"
    if us % _UNITS["h"] == 0 and us:
        return f"{us // _UNITS['h']}h"
    if us % _UNITS["m"] == 0 and us:
        return f"{us // _UNITS['m']}m"
    return f"{us / US:g}s"
