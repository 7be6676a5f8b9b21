"""The SLA record's database: SQLite (a file, the default: no server) or PostgreSQL (teams), one schema.

    store = open_store("sqlite:///var/lib/slamon/record.db")       # or postgresql://user@host:5432/slamon
    store.migrate()                                                 # versioned schema (MIGRATIONS)
    applied = store.apply("slamon.sla-events", changes)             # one transaction: rows, offsets, stats
    store.offsets("slamon.sla-events")                              # partition -> next offset to read

Tables (docs/sla-record.md has every column):
- `sla_decisions`: the decisions in force, one row per (client, sla, item_key);
- `sla_withdrawals`: every withdrawn decision (its row as it was), keyed by the withdrawal's topic position;
- `consumer_offsets`: per (topic, partition) the next offset to apply. A batch's rows and its offsets commit in
  one transaction and a record below the stored offset is skipped, so a redelivered record is never applied
  twice; Kafka's committed offsets are advisory (the consumer seeks to these);
- `sla_buckets`, `sla_sketches`, `sla_priorities`, `sla_groups`: per (client, sla, period) the 15-minute bucket
  tallies, the latency-sketch bucket counts, the tallies per priority and per queue and channel of the rows in
  force, kept in the same transaction as the rows (a report reads these, not millions of rows);
- `store_stats`: counters and the newest decision instant; `schema_migrations`: applied schema versions.

URLs: `sqlite:///abs/path.db` (three slashes and an absolute path), `sqlite://relative.db`, a plain file path,
or `postgresql://[user[:password]@]host[:port]/dbname[?options]` (libpq's: `PGPASSWORD`/`PGPASSFILE` work and
keep the password out of the command line).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from monitor.errors import EXIT_UNAVAILABLE, SlamonError
from monitor.ledger import BUCKET_US
from store.records import COLUMNS, Change, net_writes

log = logging.getLogger("slamon.store")

SCHEMA_VERSION = 5


class StoreError(SlamonError):
    """A store that cannot be used as asked (bad URL, a newer schema): the message says why."""


class StoreUnavailable(StoreError):
    """The database does not answer (down, locked, disk full). The consumer waits and retries; nothing is lost."""

    exit_code = EXIT_UNAVAILABLE


# --- schema ----------------------------------------------------------------------------------------------

_ROW_DDL = """
    client TEXT NOT NULL, sla TEXT NOT NULL, item_key TEXT NOT NULL, item TEXT, kind TEXT NOT NULL,
    period TEXT NOT NULL, at_us {big} NOT NULL, outcome TEXT NOT NULL,
    decided {dbl} NOT NULL, good {dbl} NOT NULL, bad {dbl} NOT NULL, total {dbl} NOT NULL, sample {dbl},
    sketch_key INTEGER,
    priority TEXT, queue TEXT, channel TEXT, start_us {big}, deadline_us {big}, stop_us {big},
    elapsed_s {dbl}, paused_s {dbl}, target_s {dbl},
    trigger TEXT, source_partition INTEGER, source_offset {big}, topic_partition INTEGER NOT NULL,
    topic_offset {big} NOT NULL"""

# (version, description, statements). Statements use {big} and {dbl} for the dialect's 64-bit integer and
# double types. Never edit an applied migration: add the next one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "decisions in force, withdrawals, consumer offsets, counters", [
        "CREATE TABLE sla_decisions (" + _ROW_DDL + ", PRIMARY KEY (client, sla, item_key))",
        "CREATE INDEX sla_decisions_at ON sla_decisions (at_us)",
        "CREATE INDEX sla_decisions_sla_at ON sla_decisions (client, sla, at_us)",
        "CREATE TABLE sla_withdrawals (" + _ROW_DDL + ", PRIMARY KEY (topic_partition, topic_offset))",
        "CREATE INDEX sla_withdrawals_at ON sla_withdrawals (at_us)",
        "CREATE TABLE consumer_offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset {big} NOT NULL, "
        "PRIMARY KEY (topic, partition))",
        "CREATE TABLE store_stats (id INTEGER PRIMARY KEY CHECK (id = 1), topic TEXT, decided {big} NOT NULL, "
        "withdrawn {big} NOT NULL, redelivered {big} NOT NULL, pruned {big} NOT NULL, newest_at_us {big})",
        "INSERT INTO store_stats VALUES (1, NULL, 0, 0, 0, 0, NULL)",
    ]),
    (2, "explain: find an item's decisions and withdrawals by client and item id", [
        "CREATE INDEX sla_decisions_item ON sla_decisions (item, client)",
        "CREATE INDEX sla_withdrawals_item ON sla_withdrawals (item, client)",
    ]),
    (3, "reports in seconds: 15-minute bucket tallies and latency-sketch counts kept with the rows; breaches indexed", [
        "CREATE TABLE sla_buckets (client TEXT NOT NULL, sla TEXT NOT NULL, period TEXT NOT NULL, "
        "bucket {big} NOT NULL, n {big} NOT NULL, decided {dbl} NOT NULL, good {dbl} NOT NULL, "
        "bad {dbl} NOT NULL, total {dbl} NOT NULL, "
        "PRIMARY KEY (client, sla, period, bucket))",
        "CREATE INDEX sla_buckets_bucket ON sla_buckets (bucket)",
        "CREATE TABLE sla_sketches (client TEXT NOT NULL, sla TEXT NOT NULL, period TEXT NOT NULL, "
        "sketch_key INTEGER NOT NULL, n {big} NOT NULL, PRIMARY KEY (client, sla, period, sketch_key))",
        f"INSERT INTO sla_buckets SELECT client, sla, period, at_us / {BUCKET_US}, COUNT(*), SUM(decided), SUM(good), "
        f"SUM(bad), SUM(total) FROM sla_decisions GROUP BY client, sla, period, at_us / {BUCKET_US}",
        "INSERT INTO sla_sketches SELECT client, sla, period, sketch_key, COUNT(*) FROM sla_decisions "
        "WHERE sketch_key IS NOT NULL GROUP BY client, sla, period, sketch_key",
        "CREATE INDEX sla_decisions_breaches ON sla_decisions (at_us) WHERE bad > 0",
    ]),
    (4, "reviews: tallies per priority kept with the rows", [
        "CREATE TABLE sla_priorities (client TEXT NOT NULL, sla TEXT NOT NULL, period TEXT NOT NULL, "
        "priority TEXT NOT NULL, n {big} NOT NULL, decided {dbl} NOT NULL, good {dbl} NOT NULL, bad {dbl} NOT NULL, "
        "total {dbl} NOT NULL, PRIMARY KEY (client, sla, period, priority))",
        "INSERT INTO sla_priorities SELECT client, sla, period, priority, COUNT(*), SUM(decided), SUM(good), SUM(bad), "
        "SUM(total) FROM sla_decisions WHERE priority IS NOT NULL GROUP BY client, sla, period, priority",
    ]),
    (5, "reviews: tallies per queue and per channel kept with the rows", [
        "CREATE TABLE sla_groups (client TEXT NOT NULL, sla TEXT NOT NULL, period TEXT NOT NULL, "
        "dimension TEXT NOT NULL, name TEXT NOT NULL, n {big} NOT NULL, decided {dbl} NOT NULL, good {dbl} NOT NULL, "
        "bad {dbl} NOT NULL, total {dbl} NOT NULL, PRIMARY KEY (client, sla, period, dimension, name))",
        *(f"INSERT INTO sla_groups SELECT client, sla, period, '{col}', {col}, COUNT(*), SUM(decided), SUM(good), "
          f"SUM(bad), SUM(total) FROM sla_decisions WHERE {col} IS NOT NULL GROUP BY client, sla, period, {col}"
          for col in ("queue", "channel")),
    ]),
]

_TYPES = {"sqlite": {"big": "INTEGER", "dbl": "REAL"}, "postgresql": {"big": "BIGINT", "dbl": "DOUBLE PRECISION"}}
_COLS = ", ".join(COLUMNS)
_OLD = COLUMNS.index("channel") + 1  # the columns of a replaced row the aggregates need (up to the channel)
_KEY_SET = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[3:])


@dataclass
class Applied:
    """What one `Store.apply` wrote."""

    decided: int = 0  # decided records applied
    withdrawn: int = 0  # withdrawn records applied
    redelivered: int = 0  # records at or below an offset already applied: skipped
    next_offsets: dict[int, int] = field(default_factory=dict)


def redact(url: str) -> str:
    """The URL with its password masked (for logs and messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)


def open_store(url: str, *, connect_timeout: float = 10.0) -> Store:
    if url.startswith(("postgresql://", "postgres://")):
        return Store(url, "postgresql", connect_timeout)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
    elif "://" in url:
        raise StoreError(f"unknown store URL {redact(url)!r}",
                         hint="use sqlite:///path/to/record.db (a file) or postgresql://user@host:5432/dbname")
    else:
        path = url
    if not path:
        raise StoreError("the sqlite URL names no file", hint="sqlite:///var/lib/slamon/record.db")
    return Store(path, "sqlite", connect_timeout)


class Store:
    """One connection to the SLA record. Not thread-safe: one per thread."""

    def __init__(self, target: str, dialect: str, connect_timeout: float = 10.0) -> None:
        self.target = target
        self.dialect = dialect
        self.connect_timeout = connect_timeout
        self.conn = None
        self.p = "?" if dialect == "sqlite" else "%s"

    @property
    def url(self) -> str:
        return redact(self.target) if self.dialect == "postgresql" else f"sqlite://{self.target}"

    # --- connection -------------------------------------------------------------------------------------

    def connect(self) -> Store:
        self.close()
        try:
            if self.dialect == "sqlite":
                folder = os.path.dirname(os.path.abspath(self.target))
                if not os.path.isdir(folder):
                    raise StoreError(f"{folder} does not exist", hint="create the directory of the store's file")
                conn = sqlite3.connect(self.target, timeout=self.connect_timeout, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")  # readers (reports) never block the writer
                conn.execute("PRAGMA synchronous=FULL")
            else:
                import psycopg

                conn = psycopg.connect(self.target, connect_timeout=max(1, int(self.connect_timeout)),
                                       autocommit=True)
        except Exception as err:
            if isinstance(err, StoreError):
                raise
            raise self._unavailable(err) from None
        self.conn = conn
        return self

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to close cleanly
                self.conn.close()
            self.conn = None

    def __enter__(self) -> Store:
        if self.conn is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unavailable(self, err: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the store at {self.url} is unavailable: {type(err).__name__}: "
                                f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}",
                                hint="start the database (or free the disk); `slamon store run` waits and retries")

    def _operational(self) -> tuple[type[BaseException], ...]:
        if self.dialect == "sqlite":
            return (sqlite3.OperationalError,)  # locked, disk full, I/O error
        import psycopg

        return (psycopg.OperationalError, psycopg.InterfaceError)

    def _sql(self, text: str) -> str:
        return text.replace("?", self.p) if self.p != "?" else text

    def _begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")

    def transaction(self):
        """A context manager: one transaction, rolled back on error; database outages become StoreUnavailable."""
        return _Transaction(self)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Rows of a read-only statement (`?` placeholders on both backends)."""
        if self.conn is None:
            self.connect()
        try:
            cur = self.conn.cursor()
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall()
            cur.close()
            return rows
        except self._operational() as err:
            self.close()
            raise self._unavailable(err) from None

    # --- schema -----------------------------------------------------------------------------------------

    def version(self) -> int:
        """The schema version of the database (0: empty)."""
        if self.dialect == "sqlite":
            exists = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        else:
            exists = self.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_migrations' "
                                "AND table_schema = current_schema()")
        if not exists:
            return 0
        return self.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0]

    def migrate(self, target: int = SCHEMA_VERSION) -> list[int]:
        """Apply the missing migrations up to `target`, each in its own transaction. Returns the versions
        applied. A database newer than this code is refused (an older slamon must not write to it)."""
        applied = []
        with self.transaction() as cur:
            if self.dialect == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(715151)")  # concurrent stores migrate one at a time
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                        "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store at {self.url} has schema version {current}; this slamon knows up to "
                             f"{SCHEMA_VERSION}", hint="upgrade slamon before using this store")
        types = _TYPES[self.dialect]
        for version, description, statements in MIGRATIONS:
            if version <= current or version > target:
                continue
            with self.transaction() as cur:
                if self.dialect == "postgresql":
                    cur.execute("SELECT pg_advisory_xact_lock(715151)")
                cur.execute(self._sql("SELECT 1 FROM schema_migrations WHERE version = ?"), (version,))
                if cur.fetchall():  # another process applied it meanwhile
                    continue
                for statement in statements:
                    cur.execute(statement.format(**types))
                cur.execute(self._sql("INSERT INTO schema_migrations VALUES (?, ?, ?)"),
                            (version, description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            applied.append(version)
            log.info("store %s: schema version %d applied (%s)", self.url, version, description)
        return applied

    def check_schema(self) -> None:
        current = self.version()
        if current != SCHEMA_VERSION:
            raise StoreError(f"the store at {self.url} has schema version {current}, this slamon needs "
                             f"{SCHEMA_VERSION}", hint="run `slamon store migrate --url URL`")

    # --- writes -----------------------------------------------------------------------------------------

    def offsets(self, topic: str) -> dict[int, int]:
        return dict(self.query("SELECT partition, next_offset FROM consumer_offsets WHERE topic = ?", (topic,)))

    def apply(self, topic: str, changes: Iterable[Change]) -> Applied:
        """Apply records read from `topic` (each row ends with its topic partition and offset) in one transaction:
        the rows, the withdrawals, the partitions' next offsets and the counters commit together. Records below
        a partition's stored next offset were applied before and are skipped."""
        by_partition: dict[int, list[Change]] = defaultdict(list)
        for ch in changes:
            by_partition[ch.row[-2]].append(ch)
        out = Applied()
        if not by_partition:
            return out
        with self.transaction() as cur:
            stored = self._lock_offsets(cur, topic, sorted(by_partition))
            fresh: list[Change] = []
            for partition, batch in by_partition.items():
                batch.sort(key=lambda ch: ch.row[-1])
                start = stored.get(partition, 0)
                keep = [ch for ch in batch if ch.row[-1] >= start]
                out.redelivered += len(batch) - len(keep)
                if keep:
                    out.next_offsets[partition] = keep[-1].row[-1] + 1
                    fresh.extend(keep)
            upserts, deletes, withdrawn = net_writes(fresh)
            out.withdrawn = len(withdrawn)
            out.decided = len(fresh) - out.withdrawn
            p = self.p
            agg = _Aggregates()
            keys = [row[:3] for row in upserts] + deletes
            if self.dialect == "postgresql":
                olds = self._pg_write(cur, keys, upserts, withdrawn)
            else:
                olds = self._rows_of(cur, keys)
                if deletes:
                    cur.executemany("DELETE FROM sla_decisions WHERE client = ? AND sla = ? AND item_key = ?", deletes)
                if upserts:
                    cur.executemany(f"INSERT INTO sla_decisions ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                                    f"ON CONFLICT (client, sla, item_key) DO UPDATE SET {_KEY_SET}", upserts)
                if withdrawn:
                    cur.executemany(f"INSERT INTO sla_withdrawals ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                                    "ON CONFLICT (topic_partition, topic_offset) DO NOTHING", withdrawn)
            for old in olds:
                agg.add(old, -1)
            for row in upserts:
                agg.add(row, +1)
            agg.write(cur, p)
            if out.next_offsets:
                cur.executemany(self._sql("INSERT INTO consumer_offsets VALUES (?, ?, ?) ON CONFLICT (topic, "
                                          "partition) DO UPDATE SET next_offset = excluded.next_offset"),
                                [(topic, part, nxt) for part, nxt in out.next_offsets.items()])
            newest = max((row[6] for row in upserts), default=None)
            cur.execute(self._sql("UPDATE store_stats SET decided = decided + ?, withdrawn = withdrawn + ?, "
                                  "redelivered = redelivered + ?, newest_at_us = CASE WHEN newest_at_us IS NULL OR "
                                  "newest_at_us < ? THEN ? ELSE newest_at_us END WHERE id = 1"),
                        (out.decided, out.withdrawn, out.redelivered, newest, newest) if newest is not None else
                        (out.decided, out.withdrawn, out.redelivered, -1, None))
        return out

    def _pg_write(self, cur, keys: list[tuple], upserts: list[tuple], withdrawn: list[tuple]) -> list[tuple]:
        """PostgreSQL: the batch goes in by COPY into temporary tables (dropped at commit), then set-based
        statements; executemany's round trip per row was ~10x slower. Returns the rows the batch replaces."""
        cur.execute("CREATE TEMP TABLE stage_keys (client TEXT, sla TEXT, item_key TEXT) ON COMMIT DROP")
        cur.execute("CREATE TEMP TABLE stage_rows (LIKE sla_decisions) ON COMMIT DROP")
        with cur.copy("COPY stage_keys FROM STDIN") as copy:
            for key in keys:
                copy.write_row(key)
        cur.execute(f"SELECT {', '.join('d.' + c for c in COLUMNS[:_OLD])} FROM sla_decisions d JOIN stage_keys k "
                    "ON d.client = k.client AND d.sla = k.sla AND d.item_key = k.item_key")
        olds = cur.fetchall()
        if olds:  # replaced (an upsert) or deleted (a withdrawal)
            cur.execute("DELETE FROM sla_decisions d USING stage_keys k WHERE d.client = k.client AND d.sla = k.sla "
                        "AND d.item_key = k.item_key")
        for table, rows in (("sla_decisions", upserts), ("sla_withdrawals", withdrawn)):
            if not rows:
                continue
            with cur.copy(f"COPY stage_rows ({_COLS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conflict = "" if table == "sla_decisions" else " ON CONFLICT (topic_partition, topic_offset) DO NOTHING"
            cur.execute(f"INSERT INTO {table} ({_COLS}) SELECT {_COLS} FROM stage_rows{conflict}")
            cur.execute("TRUNCATE stage_rows")
        return olds

    def _rows_of(self, cur, keys: list[tuple]) -> list[tuple]:
        """The rows in force for `keys` (client, sla, item_key): their COLUMNS up to the channel (`_OLD`)."""
        out: list[tuple] = []
        p = self.p
        for start in range(0, len(keys), 3000):  # SQLite allows 32766 parameters per statement
            chunk = keys[start:start + 3000]
            cur.execute(f"SELECT {', '.join(COLUMNS[:_OLD])} FROM sla_decisions WHERE (client, sla, item_key) IN "
                        f"(VALUES {', '.join([f'({p}, {p}, {p})'] * len(chunk))})",
                        [v for key in chunk for v in key])
            out.extend(cur.fetchall())
        return out

    def _lock_offsets(self, cur, topic: str, partitions: list[int]) -> dict[int, int]:
        if self.dialect == "postgresql":  # lock the partitions' rows: two stores never apply one offset twice
            cur.executemany("INSERT INTO consumer_offsets VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
                            [(topic, part) for part in partitions])
            cur.execute("SELECT partition, next_offset FROM consumer_offsets WHERE topic = %s "
                        "AND partition = ANY(%s) FOR UPDATE", (topic, partitions))
        else:
            cur.execute("SELECT partition, next_offset FROM consumer_offsets WHERE topic = ?", (topic,))
        stored = dict(cur.fetchall())
        cur.execute("SELECT topic FROM store_stats WHERE id = 1")
        (mine,) = cur.fetchone()
        if mine is None:
            cur.execute(self._sql("UPDATE store_stats SET topic = ? WHERE id = 1"), (topic,))
        elif mine != topic:
            raise StoreError(f"the store at {self.url} records the topic {mine!r}, not {topic!r}",
                             hint="give each SLA-events topic its own store (database or file)")
        return stored

    def prune(self, retention_us: int | None) -> int:
        """Delete decisions and withdrawals decided more than `retention_us` before the newest decision (event
        time, so a replayed history is pruned like a live one). None: keep everything. Returns rows deleted."""
        if not retention_us:
            return 0
        newest = self.stats().get("newest_at_us")
        if newest is None:
            return 0
        limit = newest - retention_us
        with self.transaction() as cur:
            agg = _Aggregates()  # the rows leaving, summed by the database (a first prune may cover months)
            sums = "COUNT(*), SUM(decided), SUM(good), SUM(bad), SUM(total)"
            cur.execute(self._sql(f"SELECT client, sla, period, at_us / {BUCKET_US}, {sums} FROM sla_decisions "
                                  f"WHERE at_us < ? GROUP BY client, sla, period, at_us / {BUCKET_US}"), (limit,))
            for *key, n, d, g, b, t in cur.fetchall():
                agg.buckets[tuple(key)] = [-n, -d, -g, -b, -t]
            cur.execute(self._sql(f"SELECT client, sla, period, priority, {sums} FROM sla_decisions WHERE at_us < ? "
                                  "AND priority IS NOT NULL GROUP BY client, sla, period, priority"), (limit,))
            for *key, n, d, g, b, t in cur.fetchall():
                agg.priorities[tuple(key)] = [-n, -d, -g, -b, -t]
            for col in ("queue", "channel"):
                cur.execute(self._sql(f"SELECT client, sla, period, '{col}', {col}, {sums} FROM sla_decisions "
                                      f"WHERE at_us < ? AND {col} IS NOT NULL GROUP BY client, sla, period, {col}"),
                            (limit,))
                for *key, n, d, g, b, t in cur.fetchall():
                    agg.groups[tuple(key)] = [-n, -d, -g, -b, -t]
            cur.execute(self._sql("SELECT client, sla, period, sketch_key, COUNT(*) FROM sla_decisions WHERE at_us < ? "
                                  "AND sketch_key IS NOT NULL GROUP BY client, sla, period, sketch_key"), (limit,))
            for *key, n in cur.fetchall():
                agg.sketches[tuple(key)] = -n
            agg.write(cur, self.p)
            cur.execute(self._sql("DELETE FROM sla_decisions WHERE at_us < ?"), (limit,))
            deleted = cur.rowcount
            cur.execute(self._sql("DELETE FROM sla_withdrawals WHERE at_us < ?"), (limit,))
            deleted += cur.rowcount
            cur.execute(self._sql("UPDATE store_stats SET pruned = pruned + ? WHERE id = 1"), (deleted,))
        return deleted

    # --- reads ------------------------------------------------------------------------------------------

    def stats(self) -> dict:
        rows = self.query("SELECT decided, withdrawn, redelivered, pruned, newest_at_us FROM store_stats")
        if not rows:
            return {}
        decided, withdrawn, redelivered, pruned, newest = rows[0]
        return {"decided_records": decided, "withdrawn_records": withdrawn, "redelivered_records": redelivered,
                "pruned_rows": pruned, "newest_at_us": newest}

    def count(self) -> int:
        return self.query("SELECT COUNT(*) FROM sla_decisions")[0][0]


class _Aggregates:
    """Changes to `sla_buckets`, `sla_priorities`, `sla_groups` and `sla_sketches` of rows leaving (-1) and entering
    (+1) `sla_decisions`."""

    def __init__(self) -> None:
        self.buckets: dict[tuple, list] = {}
        self.priorities: dict[tuple, list] = {}
        self.groups: dict[tuple, list] = {}  # (client, sla, period, "queue" | "channel", name)
        self.sketches: dict[tuple, int] = defaultdict(int)

    @staticmethod
    def _acc(table: dict, key: tuple, row: tuple, sign: int) -> None:
        acc = table.get(key)
        if acc is None:
            acc = table[key] = [0, 0.0, 0.0, 0.0, 0.0]
        acc[0] += sign
        acc[1] += sign * row[8]
        acc[2] += sign * row[9]
        acc[3] += sign * row[10]
        acc[4] += sign * row[11]

    def add(self, row: tuple, sign: int) -> None:
        client, sla, period, at = row[0], row[1], row[5], row[6]
        self._acc(self.buckets, (client, sla, period, at // BUCKET_US), row, sign)
        if row[14] is not None:
            self._acc(self.priorities, (client, sla, period, row[14]), row, sign)
        if row[15] is not None:
            self._acc(self.groups, (client, sla, period, "queue", row[15]), row, sign)
        if row[16] is not None:
            self._acc(self.groups, (client, sla, period, "channel", row[16]), row, sign)
        if row[13] is not None:
            self.sketches[(client, sla, period, row[13])] += sign

    def write(self, cur, p: str) -> None:
        for table, key, acc_rows in (("sla_buckets", ("bucket",), self.buckets),
                                     ("sla_priorities", ("priority",), self.priorities),
                                     ("sla_groups", ("dimension", "name"), self.groups)):
            rows = [(*k, *acc) for k, acc in acc_rows.items() if acc[0] or any(acc[1:])]
            if not rows:
                continue
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join([p] * (8 + len(key)))}) ON CONFLICT (client, sla, "
                            f"period, {', '.join(key)}) DO UPDATE SET n = {table}.n + excluded.n, decided = "
                            f"{table}.decided + excluded.decided, good = {table}.good + excluded.good, bad = "
                            f"{table}.bad + excluded.bad, total = {table}.total + excluded.total", rows)
            emptied = [k for k, acc in acc_rows.items() if acc[0] < 0]
            if emptied:
                cur.executemany(f"DELETE FROM {table} WHERE client = {p} AND sla = {p} AND period = {p} AND "
                                + " AND ".join(f"{c} = {p}" for c in key) + " AND n = 0", emptied)
        sketches = [(*key, n) for key, n in self.sketches.items() if n]
        if sketches:
            cur.executemany(f"INSERT INTO sla_sketches VALUES ({', '.join([p] * 5)}) ON CONFLICT (client, sla, period, "
                            "sketch_key) DO UPDATE SET n = sla_sketches.n + excluded.n", sketches)
            emptied = [key for key, n in self.sketches.items() if n < 0]
            if emptied:
                cur.executemany(f"DELETE FROM sla_sketches WHERE client = {p} AND sla = {p} AND period = {p} AND "
                                f"sketch_key = {p} AND n = 0", emptied)


class _Transaction:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.cur = None

    def __enter__(self):
        store = self.store
        if store.conn is None:
            store.connect()
        try:
            self.cur = store.conn.cursor()
            store._begin(self.cur)
        except store._operational() as err:
            store.close()
            raise store._unavailable(err) from None
        return self.cur

    def __exit__(self, exc_type, exc, tb) -> bool:
        store, cur = self.store, self.cur
        operational = store._operational()
        try:
            if exc_type is None:
                cur.execute("COMMIT")
                return False
            cur.execute("ROLLBACK")
        except operational as err:
            store.close()
            if exc_type is None:
                raise store._unavailable(err) from None
        finally:
            with contextlib.suppress(Exception):  # a broken connection
                cur.close()
        if exc is not None and isinstance(exc, operational):
            store.close()
            raise store._unavailable(exc) from None
        return False
