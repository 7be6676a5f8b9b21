"""A small process manager for the local demo: every child in its own process group, stopped group-wide.

Standard library only (the demo imports it before the Python dependencies are checked).

    pm = ProcessManager(logdir)
    kafka = pm.spawn("kafka", ["bash", "deploy/kafka/kafka.sh", "run", dir, port])
    ...
    pm.stop_all()                      # reverse start order (or an explicit order), SIGTERM then SIGKILL

Guarantees, so no broker or server outlives the demo:
* each child is started with `start_new_session=True` (its own session and process group, pgid == pid), so a
  terminal's Ctrl-C reaches only the demo, which then stops the children in a sensible order;
* stopping signals the whole process group and, once the leader has exited, SIGKILLs whatever is left in the
  group (grandchildren of a shell wrapper);
* children spawned from the main thread get PR_SET_PDEATHSIG=SIGKILL: if the demo itself is killed with
  SIGKILL, the kernel kills them too;
* `stop_all` is registered with atexit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _pdeathsig() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's group reused the id
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (from /proc; zombies included)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


class Proc:
    """One child process (the leader of its own process group) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: Mapping[str, str] | None,
                 cwd: str | os.PathLike | None, stop_timeout: float) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.popen: subprocess.Popen | None = None
        self.started_at = 0.0
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        preexec = _pdeathsig if threading.current_thread() is threading.main_thread() else None
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=preexec, env=self.env,
                cwd=str(self.cwd) if self.cwd is not None else None,
            )
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float | None = None, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM the group, SIGKILL it after `timeout`; then SIGKILL any straggler of the group."""
        if self.popen is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if self.popen.poll() is None:
            self.signal_group(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(10)
        # the leader is gone: nothing of its group may stay (a wrapper's children, a forked helper)
        pgid = self.popen.pid
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            self.signal_group(signal.SIGKILL)
            time.sleep(0.05)
        self.returncode = self.popen.returncode
        return self.returncode

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


class ProcessManager:
    """Starts children and stops every one of them, once, in reverse order (or as told)."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = Path(logdir)
        self.procs: list[Proc] = []
        self._lock = threading.Lock()
        atexit.register(self.kill_all)

    def spawn(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike | None = None, stop_timeout: float = 15.0) -> Proc:
        proc = Proc(name, [str(a) for a in argv], self.logdir / f"{name}.log", env, cwd, stop_timeout)
        with self._lock:
            self.procs.append(proc)
        return proc.start()

    def get(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)

    def dead(self) -> list[Proc]:
        """Children that exited although nobody stopped them."""
        return [p for p in self.procs if p.popen is not None and p.returncode is None and not p.alive()]

    def stop(self, procs: Iterable[Proc], parallel: bool = True, on_stop=None) -> None:
        procs = [p for p in procs if p.popen is not None and p.returncode is None]
        if not procs:
            return

        def one(p: Proc) -> None:
            started = time.monotonic()
            rc = p.stop()
            if on_stop is not None:
                on_stop(p, rc, time.monotonic() - started)

        if not parallel or len(procs) == 1:
            for p in procs:
                one(p)
            return
        threads = [threading.Thread(target=one, args=(p,), daemon=True) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stop_all(self, order: Iterable[Iterable[str]] = (), on_stop=None) -> None:
        """Stop in stages: each stage a list of names stopped in parallel; the rest last, newest first."""
        done: set[str] = set()
        for stage in order:
            names = set(stage)
            self.stop([p for p in self.procs if p.name in names], on_stop=on_stop)
            done |= names
        rest = [p for p in reversed(self.procs) if p.name not in done]
        self.stop(rest, parallel=False, on_stop=on_stop)

    def kill_all(self) -> None:
        """Last resort (atexit, second Ctrl-C): SIGKILL every group still there."""
        for p in self.procs:
            if p.popen is None:
                continue
            p.signal_group(signal.SIGKILL)
            with contextlib.suppress(Exception):
                p.popen.wait(5)
            if p.returncode is None:
                p.returncode = p.popen.returncode
