"""A wall-clock scenario for the end-to-end alert test: tickets and calls sent to Kafka as they happen.

Every event carries the wall time at which it is sent (the worker runs with `clock: wall`), so deadlines,
waits and burn windows unfold in real time:

    sender = Sender(settings, client="acme")
    sender.tickets_created(["T-1", "T-2"], "P1")          # created now: deadline = now + the P1 target
    calls = CallTraffic(sender, good_every=2.0).start()    # one good call every 2 s (answered after 2 s)
    calls.start_burst(60, wait=25.0, spread=25.0)           # 60 calls offered now, decided 25-50 s later
    calls.stop()
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterable

import orjson

from monitor.events import format_us
from streams.config import Settings
from streams.producer import make_producer, produce


def now_us() -> int:
    return time.time_ns() // 1000


class Sender:
    """Builds events for one client, stamps them with the wall clock and sends them keyed by client."""

    def __init__(self, settings: Settings, client: str) -> None:
        self.settings = settings
        self.client = client
        self.tag = uuid.uuid4().hex[:6]
        self._ids = itertools.count(1)
        self._producer = make_producer(settings)
        self._lock = threading.Lock()
        self.sent = 0

    def close(self) -> None:
        self._producer.close()

    def _event(self, ts_us: int, **fields: object) -> bytes:
        return orjson.dumps({"event_id": f"{self.tag}-{next(self._ids)}", "client": self.client,
                             "ts": format_us(ts_us), **fields})

    def send(self, lines: Iterable[bytes]) -> None:
        lines = list(lines)
        with self._lock:  # one flush at a time; events of one call/ticket stay in order
            result = produce(self.settings, lines, producer=self._producer)
        if result.failed:
            raise RuntimeError(f"{result.failed} events not sent: {result.errors}")
        self.sent += result.sent

    # --- tickets
    def tickets_created(self, ids: Iterable[str], priority: str, ts_us: int | None = None) -> int:
        """`created` events stamped `ts_us` (default: now); returns that instant."""
        ts = ts_us if ts_us is not None else now_us()
        self.send(self._event(ts, kind="ticket", ticket_id=i, type="created", priority=priority) for i in ids)
        return ts

    def tickets_answered(self, ids: Iterable[str], resolve: bool = True) -> int:
        """First agent reply (stops first-response clocks) and, optionally, `resolved`, stamped now."""
        ts = now_us()
        types = ("agent_reply", "resolved") if resolve else ("agent_reply",)
        self.send(self._event(ts, kind="ticket", ticket_id=i, type=t) for i in ids for t in types)
        return ts

    # --- calls
    def calls(self, ids: Iterable[str], kind: str, queue: str = "support") -> int:
        ts = now_us()
        self.send(self._event(ts, kind="call", call_id=i, queue=queue, type=kind) for i in ids)
        return ts


class CallTraffic:
    """Steady good calls in a background thread, plus bursts of calls that wait too long.

    Good calls: one offered every `good_every` seconds, answered one period later (a wait far below any
    service-level threshold). A burst offers `n` calls at once and decides them from `wait` seconds later on,
    spread over `spread` seconds, half answered and half abandoned: all bad for a service level whose
    `within` is below `wait` (abandons count; the waits are far above the 5 s short-abandon limit).
    """

    def __init__(self, sender: Sender, good_every: float = 2.0) -> None:
        self.sender = sender
        self.good_every = good_every
        self.good_answered = 0
        self.bursts: list[tuple[int, int, int]] = []  # (offered, first and last decided) us, once done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-calls", daemon=True)
        self._bursting: list[threading.Thread] = []
        self._error: BaseException | None = None

    def start(self) -> CallTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, *self._bursting):
            thread.join(60)
        self.check()

    def check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"call traffic failed: {self._error!r}") from self._error

    def _run(self) -> None:
        waiting: str | None = None
        try:
            for n in itertools.count(1):
                call = f"good-{self.sender.tag}-{n}"
                self.sender.calls([call], "offered")
                if waiting is not None:
                    self.sender.calls([waiting], "answered")
                    self.good_answered += 1
                waiting = call
                if self._stop.wait(self.good_every):
                    return
        except BaseException as err:  # reported by check()/stop() in the test thread
            self._error = err

    def start_burst(self, n: int, wait: float, spread: float) -> None:
        """`burst` in a background thread (its decision instants land in `bursts`)."""
        def run() -> None:
            try:
                self.burst(n, wait, spread)
            except BaseException as err:  # reported by check()/stop()
                self._error = err

        thread = threading.Thread(target=run, name="e2e-burst", daemon=True)
        self._bursting.append(thread)
        thread.start()

    def burst(self, n: int, wait: float, spread: float) -> tuple[int, int, int]:
        """Offer `n` calls now; from `wait` s later on, over `spread` s, answer or abandon them two by two
        (alternately). Returns (offered, first decided, last decided) in us."""
        ids = [f"burst-{self.sender.tag}-{len(self.bursts)}-{i}" for i in range(n)]
        offered = self.sender.calls(ids, "offered")
        pairs = [ids[i:i + 2] for i in range(0, n, 2)]
        decided: list[int] = []
        for k, pair in enumerate(pairs):
            due = offered / 1e6 + wait + spread * k / max(1, len(pairs) - 1)
            time.sleep(max(0.0, due - time.time()))
            decided.append(self.sender.calls(pair[:1], "answered"))
            if len(pair) > 1:
                self.sender.calls(pair[1:], "abandoned")
        self.bursts.append((offered, decided[0], decided[-1]))
        return offered, decided[0], decided[-1]
