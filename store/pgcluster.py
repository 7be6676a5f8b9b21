"""A throwaway PostgreSQL cluster (tests and the bench), from Debian's `postgresql` package.

    pg = PgCluster(tmpdir).start()      # initdb in tmpdir, `postgres` on 127.0.0.1:<free port>
    pg.url                              # postgresql://slamon@127.0.0.1:PORT/postgres
    pg.restart(); pg.kill9(); pg.stop()

initdb refuses to run as root, so as root every PostgreSQL program runs as the `postgres` user (`runuser`), in
a directory owned by it. The server runs in the foreground as this process's child, in its own process group,
and is stopped at interpreter exit if the caller did not stop it.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def bin_dir() -> Path | None:
    """Where initdb and postgres are (pg_config, else the newest /usr/lib/postgresql/*/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
                   if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    return None


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    if bin_dir() is None:
        return "PostgreSQL not installed (apt-get install postgresql; see .ci/install-services.sh)"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _uid("postgres") is None):
        return "running as root needs the postgres user and runuser to start PostgreSQL"
    return None


def _uid(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, workdir: str | os.PathLike | None = None, port: int | None = None, *, fsync: bool = True,
                 user: str = "slamon") -> None:
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="slamon-pg-"))
        self.port = port or _free_port()
        self.fsync = fsync
        self.user = user
        self.proc: subprocess.Popen | None = None
        self.bin = bin_dir()
        self._as_root = os.geteuid() == 0
        atexit.register(self._cleanup)

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_root else list(argv)

    def start(self, timeout: float = 30.0) -> PgCluster:
        if self.bin is None:
            raise RuntimeError(missing())
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            os.chown(self.workdir, _uid("postgres"), -1)
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(self._cmd(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
                                     "-E", "UTF8", "--no-instructions"),
                           check=True, capture_output=True, timeout=120)
        log = open(self.workdir / "postgres.log", "ab")  # noqa: SIM115 - the child's stdout, closed with it
        self.proc = subprocess.Popen(
            self._cmd(str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir),
                      "-c", "listen_addresses=127.0.0.1", "-c", f"fsync={'on' if self.fsync else 'off'}"),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready on port {self.port} after {timeout}s: {self.log_tail()}")

    def ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.workdir / "postgres.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """`fast` (SIGINT: abort sessions, clean shutdown) or `immediate` (SIGQUIT: crash-like, recovery at start)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def kill9(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self, mode: str = "fast") -> PgCluster:
        self.stop(mode)
        return self.start()

    def _cleanup(self) -> None:
        self.stop("immediate", timeout=10)

    def destroy(self) -> None:
        self.stop("immediate", timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)
