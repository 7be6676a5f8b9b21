"""Progress bars of the backtest's phases on stderr: `backtest scrape  [#######.....]  58%  1m12s, ETA 52s`.

Drawn only when enabled (the CLI enables them when stderr is a terminal and `--no-progress` is not given);
redrawn at most every 0.2 s, finished with a newline and the phase's time.
"""

from __future__ import annotations

import sys
import time
from typing import IO

WIDTH = 28


def _dur(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """One phase. `total` may be unknown (None: a counter, no bar or ETA) or set later."""

    def __init__(
        self,
        label: str,
        total: float | None = None,
        enabled: bool = True,
        unit: str = "",
        stream: IO[str] | None = None,
    ) -> None:
        self.label, self.total, self.enabled, self.unit = label, total, enabled, unit
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.done: float = 0
        self.note = ""
        self._drawn = 0.0

    def update(self, done: float, note: str = "", force: bool = False) -> None:
        self.done, self.note = done, note or self.note
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self.started
        head = f"backtest {self.label:<12}"
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * WIDTH) + "." * (WIDTH - int(share * WIDTH))
            eta = f", ETA {_dur(elapsed * (1 - share) / share)}" if 0 < share < 1 else ""
            text = f"{head} [{bar}] {share * 100:3.0f}%  {_dur(elapsed)}{eta}"
        else:
            text = f"{head} {self.done:,.0f}{self.unit}  {_dur(elapsed)}"
        return text + (f"  {self.note}" if self.note else "")

    def finish(self, note: str = "") -> float:
        """End the phase; returns its seconds."""
        elapsed = time.monotonic() - self.started
        if self.enabled:
            if self.total:
                self.done = self.total
            self.note = note or self.note
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
        return elapsed
