"""Child processes of slamon's tools (the backtest's Prometheus) and of the tests (Kafka, Alertmanager, workers).

Standard library only. Every process is started in its own session / process group, is registered for cleanup
at interpreter exit (and on SIGTERM, once `stop_children_on_sigterm()` ran), and is stopped by signalling its
whole process group, so no server is ever left behind. Started from the main thread, a child also dies with
its parent when the parent is SIGKILLed (Linux PR_SET_PDEATHSIG).

    class Server(ManagedProcess):
        def start(self):
            self._spawn([binary, ...], workdir / "server.log")
            self._wait(lambda: port_open(port), timeout=30, what="server")
            return self
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from monitor.errors import UnavailableError


class ServiceError(UnavailableError):
    """A service or tool could not be started, or answered badly (exit code: unavailable)."""


# --- helpers ------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on host (the OS picks it; small race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def which(path_or_name: str) -> str | None:
    """The executable: an absolute path if it is executable, else looked up on PATH."""
    if os.path.isabs(path_or_name):
        return path_or_name if os.access(path_or_name, os.X_OK) else None
    return shutil.which(path_or_name)


def tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP request (JSON body if given); returns (status, body) for any HTTP status."""
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url: str, timeout: float = 10.0) -> Any:
    status, raw = http("GET", url, timeout=timeout)
    if status != 200:
        raise ServiceError(f"GET {url} -> HTTP {status}: {raw[:500]!r}")
    return json.loads(raw)


# Children die with this process even if it is SIGKILLed (Linux only; only for children started from the main
# thread, since the signal fires when the *thread* that forked them exits).
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup_pdeathsig() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# --- process registry ---------------------------------------------------------------------------------------

# strong references: a caller that drops its handle must not orphan the process
_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


def stop_all(timeout: float = 10.0) -> None:
    """Stop every process started through this module that is still running."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        with contextlib.suppress(Exception):
            p._terminate(timeout)


atexit.register(stop_all)


def stop_children_on_sigterm() -> None:
    """SIGTERM's default action skips atexit; turn it into SystemExit so the children are stopped too.
    Only from the main thread, and only if nobody installed a SIGTERM handler already."""
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

            def _on_term(signum, frame):
                stop_all(5.0)
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, _on_term)


class ManagedProcess:
    """A child process in its own process group, logged to a file, stopped group-wide."""

    name = "process"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_offset = 0

    # -- lifecycle
    def _spawn(self, argv: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        preexec = _child_setup_pdeathsig if threading.current_thread() is threading.main_thread() else None
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
                env=dict(env) if env is not None else None,
                cwd=str(log_path.parent),
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def _terminate(self, timeout: float) -> int | None:
        """SIGTERM the group, wait, SIGKILL the group on timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL the whole process group and wait for it to be gone (crash simulation)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def log_tail(self, n: int = 40) -> str:
        return tail(self.log_path, n) if self.log_path else "(no log)"

    def _new_log_text(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                code = self.proc.returncode if self.proc else None
                raise ServiceError(f"{what} exited during startup (code {code}); log tail:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self._terminate(5)
        raise ServiceError(f"{what} not ready after {timeout:.0f}s; log tail:\n{self.log_tail()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0) -> int | None:  # overridden where needed
        return self._terminate(timeout)


class LocalHttpService(ManagedProcess):
    """A managed process serving HTTP on 127.0.0.1:`port` (Prometheus, Alertmanager)."""

    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"
