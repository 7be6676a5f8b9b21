"""Following a file (Asterisk's queue_log) from the gateway process: `tails:` in the gateway config.

Every 0.5 s (poll_seconds) the tailer reads the complete new lines, maps each with its connector, validates the
events with the worker's decoder and produces them (keyed by client) before it records the read position
(`position_file`: inode and offset, written atomically). A line that cannot be mapped goes to the dead-letter
topic with its text. Kafka unavailable: the tailer waits and retries the same lines (nothing skipped).
Rotation (a new inode) or truncation: the new file is read from its start. After a crash the lines since the
last recorded position are read again: their event ids are the same, so the engine counts them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import orjson

from ingest.config import Tail
from ingest.connectors import connector
from ingest.connectors.base import Context, Reject
from ingest.errors import KafkaUnavailable
from monitor.events import Rejection, decode_event

log = logging.getLogger("slamon.ingest.tail")
MAX_CHUNK = 1 << 20


class Tailer:
    def __init__(self, name: str, tail: Tail, producer, clients) -> None:
        self.name = name
        self.tail = tail
        self.producer = producer
        self.clients = clients
        self.module = connector(tail.connector)
        self.options = tail.parsed_options
        self.inode: int | None = None
        self.offset: int | None = None
        self._task: asyncio.Task | None = None
        self.lines = 0
        self.events = 0
        self.dead_letters = 0

    def start(self) -> None:
        self._load_position()
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _load_position(self) -> None:
        pf = self.tail.position_file
        if pf is not None and pf.exists():
            with contextlib.suppress(ValueError, OSError):
                inode, offset = pf.read_text().split()
                self.inode, self.offset = int(inode), int(offset)

    def _save_position(self) -> None:
        pf = self.tail.position_file
        if pf is None:
            return
        tmp = pf.with_suffix(pf.suffix + ".tmp")
        tmp.write_text(f"{self.inode} {self.offset}\n")
        os.replace(tmp, pf)

    async def run(self) -> None:
        await self.producer.ready.wait()
        while True:
            try:
                progressed = await self.step()
            except KafkaUnavailable as err:
                log.warning("tail %s: %s; retrying", self.name, err)
                progressed = False
            except OSError as err:
                log.warning("tail %s: %s", self.name, err)
                progressed = False
            if not progressed:
                await asyncio.sleep(self.tail.poll_seconds)

    async def step(self) -> bool:
        """Read, map and produce the complete lines after the position; True if any were consumed."""
        path: Path = self.tail.path
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if self.inode != st.st_ino or self.offset is None or st.st_size < self.offset:
            first = self.offset is None and self.inode is None
            self.inode = st.st_ino
            self.offset = st.st_size if first and not self.tail.from_start else 0
            self._save_position()
        if st.st_size <= self.offset:
            return False
        with open(path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(MAX_CHUNK)
        end = chunk.rfind(b"\n")
        if end < 0:
            return False
        chunk = chunk[: end + 1]
        records, letters = [], []
        for raw in chunk.splitlines():
            if not raw.strip():
                continue
            self.lines += 1
            line = raw.decode("utf-8", "replace")
            fields = self.module.parse_line(line)
            result = Reject("not a queue_log line") if fields is None else None
            client = self.tail.client_for(fields) if fields is not None else None
            if result is None:
                result = self.module.map_payload(fields, Context(client=client or "", source=self.name,
                                                                 options=self.options))
            if not isinstance(result, Reject) and result and client is None:
                result = Reject("no client for this line (client map)")
            if not isinstance(result, Reject):
                for event in result:
                    value = orjson.dumps(event)
                    decoded = decode_event(value, self.clients)
                    if isinstance(decoded, Rejection):
                        result = Reject(f"{decoded.reason}: {decoded.detail}")
                        break
                    records.append((client.encode(), value))
            if isinstance(result, Reject):
                letters.append((client, raw, result.reason))
        if records:
            await self.producer.deliver(records)
            self.events += len(records)
        for client, raw, reason in letters:
            await self.producer.dead_letter(client.encode() if client else None, raw, [
                ("reason", b"unmappable"), ("detail", reason.encode()[:1000]), ("source", b"ingest"),
                ("endpoint", self.name.encode()), ("connector", self.tail.connector.encode())])
            self.dead_letters += 1
        self.offset += len(chunk)
        self._save_position()
        return True
