"""docs/operations.md, followed step by step: its `sh` blocks, extracted from the document and run as written, in
order, in one bash session (`set -euo pipefail`) from the repository root, as an operator with a fresh clone
would: a broker (deploy/kafka/kafka.sh), Kafka's tools, `slamon topics create/describe`, two workers on one
host, traffic, lag to 0 in Kafka's view, kill -9 of a worker, takeover, lag to 0 again, the replacement, a
rebuild of the state from the events topic, the topics listed, everything stopped.

The test only chooses the directory and the two workers' ports (the document's `OPS`, `W1`, `W2`: free ones,
so it can run beside other tests), then checks what the blocks printed. About 2-3 minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import KafkaBroker, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
MARK = "::slamon-ops block {}::"


def sh_blocks(text: str) -> list[str]:
    """The fenced blocks whose info string is `sh`, in document order."""
    return [m.group(1) for m in re.finditer(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)]


def test_the_blocks_are_found():
    blocks = sh_blocks(DOC.read_text())
    assert len(blocks) >= 9 and "kafka.sh start" in blocks[1] and "kill -9" in "".join(blocks)


def test_operations_doc_step_by_step(tmp_path):
    missing = KafkaBroker.missing()
    if missing:
        if os.environ.get("SLAMON_REQUIRE_SERVICES"):
            pytest.fail(f"{missing} [SLAMON_REQUIRE_SERVICES is set]", pytrace=False)
        pytest.skip(missing)
    blocks = sh_blocks(DOC.read_text())
    script = "set -euo pipefail\n" + "".join(f"echo '{MARK.format(i)}'\n{b}" for i, b in enumerate(blocks))
    ops = tmp_path / "ops"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_") or k in ("SLAMON_CACHE",)}
    env.update(OPS=str(ops), W1=f"127.0.0.1:{free_port()}", W2=f"127.0.0.1:{free_port()}",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    (tmp_path / "recipe.sh").write_text(script)
    proc = subprocess.Popen(["bash", str(tmp_path / "recipe.sh")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        out = ""
    finally:
        cleanup(proc, ops)
    print(out)  # what the operator would see (pytest -rP)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(ops.glob("w*.log")))
    assert proc.returncode == 0, f"the recipe failed (exit {proc.returncode}):\n{out[-6000:]}\n{logs}"
    parts = dict(re.findall(r"::slamon-ops block (\d+)::\n(.*?)(?=::slamon-ops block|\Z)", out, flags=re.S))
    blocks_text = {int(k): v for k, v in parts.items()}
    described = [json.loads(line) for text in blocks_text.values() for line in text.splitlines()
                 if line.startswith('{"topic"')]
    names = {d["topic"] for d in described}
    assert names == {"slamon.events", "slamon.deadletter", "slamon.sla-events", "slamon-snapshots-changelog"}
    assert all(d["exists"] and d["partitions"] == 4 for d in described)
    listed = set(blocks_text[max(blocks_text)].split())  # the last block lists the topics
    assert "slamon.events" in listed and listed - names <= {"__consumer_offsets", "__transaction_state"}, listed
    took = re.search(r"took over w1's partitions (\d+) s after the kill", out)
    assert took and int(took[1]) < 30, out[-3000:]
    counts = re.search(r"events in the file: (\d+), applied: (\d+)", out)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 1500, out[-3000:]
    assert re.search(r"slamon\s+slamon\.events\s+\d+\s+(\d+)\s+\1\s+0\s", out), "a LAG 0 table"
    print(f"OPERATIONS takeover after kill -9: {took[1]} s; events {counts[1]}")


def cleanup(proc: subprocess.Popen, ops: Path) -> None:
    """Whatever the recipe left running (it stops everything itself when it gets to its end)."""
    for pid_file in ops.glob("w*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if b"slamon" in Path(f"/proc/{pid}/cmdline").read_bytes():  # still our worker, not a reused pid
                os.kill(pid, signal.SIGKILL)
    if (ops / "kafka").exists():
        subprocess.run(["bash", str(ROOT / "deploy" / "kafka" / "kafka.sh"), "stop", str(ops / "kafka"), "10"],
                       capture_output=True, timeout=60)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
