"""The local demo end to end on this machine (`python -m deploy.local.demo`, what `make demo` runs).

Starts the demo as a subprocess, waits for the first metrics from both workers and for the first alert the
webhook receiver prints, then stops it with SIGINT (Ctrl-C) and checks that every process the demo started
(all its descendants, their process groups and sessions, anything running from its work dir) is gone.
Budget: about 1-1.5 minutes on 2 cores (start ~20-30 s, first alert ~50 s after launch, stop ~3 s).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import Alertmanager, KafkaBroker, Prometheus

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 150  # launch -> banner
ALERT_TIMEOUT = 180  # launch -> first ALERT line
STOP_TIMEOUT = 90


def _unavailable(reason: str, required: bool) -> None:
    if required:
        pytest.fail(f"{reason} [SLAMON_REQUIRE_SERVICES is set, so this is an error]", pytrace=False)
    pytest.skip(f"{reason} (set SLAMON_REQUIRE_SERVICES=1 to make this an error)")


# --- /proc -----------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """(ppid, pgid, sid, starttime) of a live (non-zombie) process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _processes() -> dict[int, tuple[int, int, int, int]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Tree:
    """Every descendant of a root pid ever seen, with the groups and sessions they used."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, tuple[int, str]] = {}  # pid -> (starttime, cmdline)
        self.groups: set[int] = set()
        self.sessions: set[int] = set()

    def scan(self) -> None:
        procs = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_rest) in procs.items():
            children.setdefault(ppid, []).append(pid)
        stack = list(children.get(self.root, []))
        while stack:
            pid = stack.pop()
            _, pgid, sid, start = procs[pid]
            if pid not in self.seen:
                self.seen[pid] = (start, _cmdline(pid))
            self.groups.add(pgid)
            self.sessions.add(sid)
            stack.extend(children.get(pid, []))

    def survivors(self, workdir: str | None) -> list[str]:
        left = []
        procs = _processes()
        for pid, (start, cmd) in self.seen.items():
            st = procs.get(pid)
            if st is not None and st[3] == start:
                left.append(f"{pid} (descendant) {cmd}")
        for pid, (_ppid, pgid, sid, _start) in procs.items():
            if pid in self.seen:
                continue
            if pgid in self.groups or sid in self.sessions - {os.getsid(0)}:
                left.append(f"{pid} (group {pgid} / session {sid}) {_cmdline(pid)}")
            elif workdir and workdir in _cmdline(pid):
                left.append(f"{pid} (uses the work dir) {_cmdline(pid)}")
        return left


# --- the test --------------------------------------------------------------------------------------------


def _metrics(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def test_demo_starts_alerts_and_stops_clean(services_required, tmp_path):
    for why in (KafkaBroker.missing(), Prometheus.missing(), Alertmanager.missing()):
        if why:
            _unavailable(why, services_required)
    if not KafkaBroker.resolved():
        _unavailable("the Kafka jars are not resolved (bash deploy/kafka/kafka.sh resolve)", services_required)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "deploy.local.demo", "--no-install", "--status-every", "15",
            "--workdir", str(tmp_path / "demo")]
    launched = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    tree = Tree(proc.pid)
    lines: list[str] = []
    cond = threading.Condition()

    def read() -> None:
        for raw in proc.stdout:
            with cond:
                lines.append(raw.decode(errors="replace").rstrip("\n"))
                cond.notify_all()
        with cond:
            cond.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_line(pattern: str, timeout: float) -> re.Match:
        rx = re.compile(pattern)
        deadline = launched + timeout
        while True:
            tree.scan()
            with cond:
                for line in lines:
                    m = rx.search(line)
                    if m:
                        return m
                if proc.poll() is not None and not reader.is_alive():
                    pytest.fail(f"the demo exited ({proc.returncode}) before {pattern!r}:\n" + "\n".join(lines))
                if time.monotonic() > deadline:
                    pytest.fail(f"no {pattern!r} after {timeout}s:\n" + "\n".join(lines))
                cond.wait(0.5)

    timings: dict[str, float] = {}
    try:
        wait_line(r"slamon demo running \(started in", START_TIMEOUT)
        timings["started"] = time.monotonic() - launched
        wait_line(r"worker-2 metrics\s+http://", START_TIMEOUT)  # the banner's rows follow its first line
        with cond:
            urls = [m.group(1) for line in lines if (m := re.search(r"worker-\d metrics\s+(http://\S+/metrics)",
                                                                      line))]
        assert len(urls) == 2, "\n".join(lines)

        # the first metrics of both workers (a worker exports pipeline series for its partitions even when
        # none of the example clients hashes to them)
        pending = set(urls)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            tree.scan()
            for url in list(pending):
                body = _metrics(url)
                if "slamon_input_offset{" in body or "slamon_events_received_total{" in body:
                    pending.discard(url)
            time.sleep(0.5)
        assert not pending, f"no slamon metrics from {pending}"
        timings["metrics"] = time.monotonic() - launched
        assert any("slamon_sla_info{" in _metrics(u) for u in urls), "no worker exports the clients' SLA series"

        first = wait_line(r"ALERT FIRING\s+(\w+)\s+(Slamon\w+) (\S+)", ALERT_TIMEOUT)
        timings["first_alert"] = time.monotonic() - launched
        assert first.group(2).startswith("Slamon")
        tree.scan()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                pytest.fail("the demo did not stop within 90 s of SIGINT:\n" + "\n".join(lines))
        reader.join(10)
    timings["stopped"] = time.monotonic() - launched
    output = "\n".join(lines)
    print(output)
    print("timings (s since launch):", {k: round(v, 1) for k, v in timings.items()})

    assert proc.returncode == 0, output
    assert "everything stopped" in output
    assert len(tree.seen) >= 6, f"expected kafka, 2 workers, prometheus, alertmanager, feed; saw {tree.seen}"
    time.sleep(0.5)
    left = tree.survivors(str(tmp_path / "demo"))
    assert not left, "processes left behind:\n" + "\n".join(left)
