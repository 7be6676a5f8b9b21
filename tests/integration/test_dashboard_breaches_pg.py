"""The client dashboard's "Recent breaches" panel (alerts.dashboards.RECENT_BREACHES_SQL) on a real PostgreSQL
SLA record, read as the read-only role Grafana logs in with.

A throwaway cluster (store.pgcluster); the role is created by the compose init script itself
(deploy/compose/postgres-init/10-grafana-reader.sh) BEFORE the store creates its tables, as in docker-compose;
six hours of generated traffic of two clients go through the engine into the store (store.feed, what
`slamon store load` does); then the panel's SQL runs with Grafana's macros and variables replaced by
`grafana_sql` below, and its rows are compared with the breaches the store holds, selected in Python.

How the test stands in for Grafana (the macros of Grafana's SQL datasources, and its variable formats):
  $__unixEpochFrom() / $__unixEpochTo()   the dashboard's time range, whole Unix seconds
  ${client:sqlstring}                     the client as a quoted SQL string ('' doubles a quote)
  ${sla:regex}                            one SLA: the value regex-escaped; several: (a|b); All: the variable's
                                          custom all value `.+`, which Grafana inserts unformatted
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from alerts.dashboards import BREACHES_LIMIT, RECENT_BREACHES_SQL, dashboards, used_variables
from monitor.contracts import load_contracts
from monitor.simulation.generator import GeneratorConfig, generate
from store import pgcluster
from store.db import open_store
from store.feed import load_records, sla_records

pytestmark = pytest.mark.integration

INIT = "deploy/compose/postgres-init/10-grafana-reader.sh"
CLIENTS = ("acme-retail", "globex-bank")
HOUR_US = 3_600_000_000
START_US = int(datetime(2026, 11, 10, 6, tzinfo=UTC).timestamp() * 1_000_000)


def grafana_regex(values: list[str] | None) -> str:
    """${sla:regex}: None is "All" (the custom all value, unformatted)."""
    if values is None:
        return ".+"
    escaped = [re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def grafana_sql(sql: str, *, client: str, slas: list[str] | None, from_s: int, to_s: int) -> str:
    out = (sql.replace("$__unixEpochFrom()", str(from_s)).replace("$__unixEpochTo()", str(to_s))
           .replace("${client:sqlstring}", "'" + client.replace("'", "''") + "'")
           .replace("${sla:regex}", grafana_regex(slas)))
    assert "$" not in out.replace("$'", ""), out  # every macro and variable replaced
    return out


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    why = pgcluster.missing() or (None if shutil.which("sh") else "no sh")
    if why:
        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip() not in ("", "0"):
            pytest.fail(f"{why} [SLAMON_REQUIRE_SERVICES is set]", pytrace=False)
        pytest.skip(why)
    cluster = pgcluster.PgCluster(fsync=False).start()
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE slamon")
        owner_url = cluster.url.rsplit("/", 1)[0] + "/slamon"
        secret = tmp_path_factory.mktemp("secrets") / "store_grafana_password"
        secret.write_text("reader's s3cret\n")
        env = {**os.environ, "PATH": f"{pgcluster.bin_dir()}:{os.environ['PATH']}", "PGHOST": "127.0.0.1",
               "PGPORT": str(cluster.port), "POSTGRES_USER": cluster.user, "POSTGRES_DB": "slamon",
               "STORE_GRAFANA_PASSWORD_FILE": str(secret)}
        done = subprocess.run(["sh", INIT], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

        contracts = load_contracts("examples/contracts.yaml")
        two = contracts.model_copy(update={"clients": {c: contracts.clients[c] for c in CLIENTS}})
        cfg = GeneratorConfig(start_us=START_US, duration_us=6 * HOUR_US, seed=11, tickets_per_hour=40,
                              calls_per_hour=120, ticket_breach_rate=0.15)
        lines = [orjson.dumps(e) for e in generate(two, cfg)]
        with open_store(owner_url) as store:
            store.migrate()
            load_records(store, "test:breaches", sla_records(lines, contracts))
        reader_url = f"postgresql://slamon_grafana@127.0.0.1:{cluster.port}/slamon"
        yield owner_url, reader_url
    finally:
        cluster.destroy()


def _expected(owner_url: str, client: str, slas: list[str] | None, from_s: int, to_s: int) -> list[tuple]:
    """The newest breaches in force of the client, chosen in Python from every row of the record."""
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute("SELECT at_us, sla, item_key, COALESCE(item, item_key), bad FROM sla_decisions "
                            "WHERE client = %s", (client,)).fetchall()
    chosen = [(at, sla, key, item) for at, sla, key, item, bad in rows
              if bad > 0 and (slas is None or sla in slas) and from_s * 1_000_000 <= at < to_s * 1_000_000]
    chosen.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [(datetime.fromtimestamp(at / 1e6, UTC), sla, item) for at, sla, _, item in chosen[:BREACHES_LIMIT]]


def _panel_rows(reader_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(reader_url) as conn:
        cur = conn.execute(sql)
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def test_the_panel_sql_is_the_dashboards():
    j = next(d for d in dashboards() if d.uid == "slamon-client").to_json()
    panel = next(p for p in j["panels"] if p["title"] == "Recent breaches")
    assert panel["targets"][0]["rawSql"] == RECENT_BREACHES_SQL
    assert used_variables(RECENT_BREACHES_SQL) == {"client", "sla", "__unixEpochFrom", "__unixEpochTo"}


@pytest.mark.parametrize("slas", [None, ["first-response"], ["first-response", "resolution"]],
                         ids=["all", "one", "two"])
def test_recent_breaches_rows(record, slas):
    owner_url, reader_url = record
    from_s, to_s = START_US // 1_000_000 + 3600, START_US // 1_000_000 + 5 * 3600
    for client in CLIENTS:
        expected = _expected(owner_url, client, slas, from_s, to_s)
        rows = _panel_rows(reader_url, grafana_sql(RECENT_BREACHES_SQL, client=client, slas=slas,
                                                   from_s=from_s, to_s=to_s))
        assert [(r["Decided at"], r["SLA"], r["Item"]) for r in rows] == expected, client
        if client == "acme-retail" and slas is None:
            assert len(rows) == BREACHES_LIMIT  # the limit holds; the newest first
        for r in rows:
            assert r["SLA"] in (slas or r["SLA"]) and r["Decided by"] in ("event", "clock")
            if r["Target"] is not None and r["Elapsed"] is not None:
                assert r["Over by"] == pytest.approx(r["Elapsed"] - r["Target"])
    # tickets breached: past their target, with a deadline shown
    rows = _panel_rows(reader_url, grafana_sql(RECENT_BREACHES_SQL, client="globex-bank", slas=["first-response"],
                                               from_s=from_s, to_s=to_s))
    assert rows and all(r["Deadline"] is not None and r["Priority"] for r in rows)


def test_an_unknown_client_or_a_quote_returns_nothing(record):
    _owner_url, reader_url = record
    for client in ("nobody", "acme-retail' OR '1'='1"):
        sql = grafana_sql(RECENT_BREACHES_SQL, client=client, slas=None, from_s=0, to_s=2**31)
        assert _panel_rows(reader_url, sql) == []


def test_the_grafana_role_only_reads(record):
    _owner_url, reader_url = record
    with psycopg.connect(reader_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM sla_decisions").fetchone()[0] > 0
        for statement in ("DELETE FROM sla_decisions", "CREATE TABLE x (a int)",
                          "UPDATE consumer_offsets SET next_offset = 0"):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute(statement)
        conn.execute("SET default_transaction_read_only = off")  # a session may lift it: privileges still hold
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM sla_decisions")
