"""BPIC 2013 (Volvo IT incidents) importer: mapping on real rows, and the whole real log when present."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from monitor.contracts import load_contracts
from monitor.events import Rejection, TicketEvent, decode_event, to_us
from monitor.importers.bpic2013 import PAUSE_STATUSES, convert, slug

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "examples" / "bpic2013-contracts.yaml"
DATASETS = Path(os.environ.get("SLAMON_DATASETS", REPO.parent / "shared" / "datasets"))
VINST = DATASETS / "bpic2013-volvo-incidents" / "VINST-new.csv"

HEADER = (
    "SR Number,Change Date+Time,Status,Sub Status,Activity,Activity Level,Involved ST Function Div,"
    "Involved Org line 3,Involved ST,Involved ST 2,ST Level,SR Latest Impact,Product,Country,Owner Country,"
    "Owner First Name,Resource"
)
# Three real SRs of VINST-new.csv, verbatim (16 rows): one that starts queued, waits on the user and is
# resolved then closed; one solved "In Call"; one solved In Call, reopened, then cancelled.
ROWS = """\
1-729406281,2012-04-24T07:28:04+01:00,Queued,Awaiting Assignment,Queued-Awaiting Assignment,Queued-Awaiting Assignment-L1,,Other,S18,S18,L1,High,PROD783,pl,Japan,Kiichi,pl-Kiichi
1-729406281,2012-04-24T07:29:42+01:00,Queued,Awaiting Assignment,Queued-Awaiting Assignment,Queued-Awaiting Assignment-L1,,Other,S18,S18,L1,High,PROD783,pl,Japan,Kiichi,pl-Kiichi
1-729406281,2012-04-24T08:08:35+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L2,D_1,Org line A2,W14 2nd,W14,L2,High,PROD783,pl,POLAND,Tomasz,pl-Tomasz
1-729406281,2012-04-24T13:04:21+01:00,Accepted,Wait - User,Accepted-Wait - User,Accepted-Wait - User-L2,D_1,Org line A2,W14 2nd,W14,L2,High,PROD783,pl,POLAND,Tomasz,pl-Tomasz
1-729406281,2012-05-15T11:11:09+01:00,Completed,Resolved,Completed-Resolved,Completed-Resolved-L2,D_1,Org line A2,W14 2nd,W14,L2,High,PROD783,pl,POLAND,Tomasz,pl-Tomasz
1-729406281,2012-05-23T00:20:28+01:00,Completed,Closed,Completed-Closed,Completed-Closed-L2,D_1,Org line A2,W14 2nd,W14,L2,High,PROD783,pl,0,Siebel,pl-Siebel
1-730644761,2012-04-24T10:07:13+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L2,A2_4,Org line A2,G303 2nd,G303,L2,Low,PROD822,be,Belgium,Guy,be-Guy
1-730644761,2012-04-24T10:08:10+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L2,A2_4,Org line A2,G303 2nd,G303,L2,Low,PROD822,be,Belgium,Guy,be-Guy
1-730644761,2012-05-02T13:24:27+01:00,Completed,In Call,Completed-In Call,Completed-In Call-L2,A2_4,Org line A2,G303 2nd,G303,L2,Low,PROD822,be,Belgium,Guy,be-Guy
1-737379684,2012-05-02T01:55:13+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,V3_2,Org line C,G96,G96,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T01:55:50+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,V3_2,Org line C,G96,G96,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T01:55:57+01:00,Accepted,Wait - User,Accepted-Wait - User,Accepted-Wait - User-L1,V3_2,Org line C,G96,G96,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T03:31:59+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,V3_2,Org line C,G96,G96,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T03:32:09+01:00,Completed,In Call,Completed-In Call,Completed-In Call-L1,V3_2,Org line C,G96,G96,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T10:34:02+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,V3_2,Org line C,G97,G97,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
1-737379684,2012-05-02T10:35:01+01:00,Completed,Cancelled,Completed-Cancelled,Completed-Cancelled-L1,V3_2,Org line C,G97,G97,L1,High,PROD732,pl,Japan,Azusa,pl-Azusa
"""  # noqa: E501


def _write(tmp_path: Path, rows: str = ROWS) -> Path:
    path = tmp_path / "vinst-sample.csv"
    # The real file: UTF-8 with BOM, CRLF line ends.
    path.write_bytes(("\ufeff" + HEADER + "\n" + rows).replace("\n", "\r\n").encode("utf-8"))
    return path


def _lifecycle(events: list[dict], sr: str) -> list[str]:
    out = []
    for e in events:
        if e["ticket_id"] == sr:
            detail = e.get("status") or e.get("priority") or ""
            out.append(f"{e['type']}:{detail}" if detail else e["type"])
    return out


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(CONTRACTS)


def test_slug():
    assert slug("Wait - User") == "wait_user"
    assert slug("In Progress") == "in_progress"
    assert slug("Awaiting Assignment") == "awaiting_assignment"
    assert slug("Wait") == "wait"


def test_pause_statuses_match_the_example_contract(contracts):
    (resolution,) = [s for s in contracts.clients["volvo-it"].slas if s.kind == "resolution"]
    assert set(PAUSE_STATUSES) == resolution.pause_statuses
    priorities = {p for s in contracts.clients["volvo-it"].slas for p in s.target}
    assert priorities == {"P1", "P2", "P3", "P4"}


def test_sample_mapping(tmp_path):
    events = list(convert(_write(tmp_path)))
    # SR that starts queued: the response is the first "Accepted - In Progress".
    assert _lifecycle(events, "1-729406281") == [
        "created:P2", "status:awaiting_assignment", "status:awaiting_assignment",
        "status:in_progress", "agent_reply", "status:wait_user",
        "status:resolved", "resolved", "status:closed", "closed",
    ]
    # Registered in progress by the service desk (immediate response), solved in the call.
    assert _lifecycle(events, "1-730644761") == [
        "created:P4", "status:in_progress", "agent_reply", "status:in_progress", "status:in_call", "resolved",
    ]
    # Solved in call, reopened (no second reply), then cancelled = closed.
    assert _lifecycle(events, "1-737379684") == [
        "created:P2", "status:in_progress", "agent_reply", "status:in_progress", "status:wait_user",
        "status:in_progress", "status:in_call", "resolved", "reopened", "status:in_progress",
        "status:cancelled", "closed",
    ]
    created = {e["ticket_id"]: e for e in events if e["type"] == "created"}
    assert created["1-729406281"]["queue"] == "L1"
    assert created["1-730644761"]["queue"] == "L2"
    assert all("channel" not in e for e in events)


def test_sample_events_are_valid_sorted_and_unique(tmp_path, contracts):
    events = list(convert(_write(tmp_path)))
    assert len(events) == 28
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "1-729406281-0-created"
    instants = []
    for e in events:
        decoded = decode_event(orjson.dumps(e), contracts.clients)
        assert isinstance(decoded, TicketEvent), decoded
        assert decoded.client == "volvo-it"
        instants.append(decoded.ts_us)
    assert instants == sorted(instants)
    # ts is copied verbatim from the CSV (offset included).
    assert events[0]["ts"] == "2012-04-24T07:28:04+01:00"
    # Interleaving across SRs: the second SR is created between rows of the first.
    order = [(e["ticket_id"], e["type"]) for e in events]
    assert order.index(("1-730644761", "created")) < order.index(("1-729406281", "status")) + 6


def test_stable_order_on_ties(tmp_path):
    events = list(convert(_write(tmp_path)))
    first_row = [e["type"] for e in events if e["event_id"].startswith("1-737379684-9-")]
    assert first_row == ["created", "status", "agent_reply"]


def test_impact_change_becomes_priority_event(tmp_path):
    # The real log keeps only the latest impact; an export with the history would change it mid-SR.
    rows = ROWS.replace(
        "2012-05-02T03:31:59+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,"
        "V3_2,Org line C,G96,G96,L1,High",
        "2012-05-02T03:31:59+01:00,Accepted,In Progress,Accepted-In Progress,Accepted-In Progress-L1,"
        "V3_2,Org line C,G96,G96,L1,Major",
    )
    assert rows != ROWS
    events = list(convert(_write(tmp_path, rows)))
    seq = _lifecycle(events, "1-737379684")
    assert seq[4:9] == [
        "status:wait_user", "priority:P1", "status:in_progress", "priority:P2", "status:in_call"]


def test_other_client_name(tmp_path):
    events = list(convert(_write(tmp_path), client="volvo-test"))
    assert {e["client"] for e in events} == {"volvo-test"}


def test_rejects_other_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns"):
        list(convert(path))


def test_unknown_impact_names_the_row(tmp_path):
    rows = ROWS.replace(",Low,PROD822", ",Critical,PROD822", 1)
    with pytest.raises(ValueError, match="row 8: unknown 'SR Latest Impact'"):
        list(convert(_write(tmp_path, rows)))


@pytest.mark.dataset
@pytest.mark.skipif(not VINST.exists(), reason=f"{VINST} not present (set SLAMON_DATASETS)")
def test_real_log(contracts, capsys):
    t0 = time.perf_counter()
    events = list(convert(VINST))
    seconds = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for e in events:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    assert counts["created"] == 7554
    assert counts["status"] == 65533  # one per row
    assert counts["reopened"] == 580
    assert len({e["event_id"] for e in events}) == len(events)
    last = None
    t1 = time.perf_counter()
    for e in events:
        decoded = decode_event(orjson.dumps(e), contracts.clients)
        assert not isinstance(decoded, Rejection), (e, decoded)
        assert last is None or decoded.ts_us >= last
        last = decoded.ts_us
    decode_seconds = time.perf_counter() - t1
    assert to_us_first(events) < last
    with capsys.disabled():
        print(f"\nbpic2013: {len(events)} events from 65,533 rows in {seconds:.2f} s "
              f"({len(events) / seconds:,.0f} events/s); decode_event {len(events) / decode_seconds:,.0f}/s")


def to_us_first(events: list[dict]) -> int:
    from datetime import datetime

    return to_us(datetime.fromisoformat(events[0]["ts"]))
