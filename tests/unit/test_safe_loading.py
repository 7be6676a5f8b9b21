"""Security: YAML is read with safe loaders only, nothing is unpickled from the network, and secrets stay out
of logs and generated files.

Unpickling. The only `pickle.loads` (anywhere, bench/ included) is `monitor.engine.restore`, reached from
`PartitionEngine.restore`, which the worker calls in exactly one place: `streams.app` `load()`, on bytes read
back from the worker group's own snapshots topic (written by its checkpoints), after checking the meta
record's chunk count, length and CRC. Event bytes from the input topic go only through `decode_event` (JSON).
The CRC detects damage, not forgery: anyone who can write to the snapshots topic can run code in the worker,
so that topic must be writable only by the workers (Kafka ACLs), like the consumer offsets.
The tests below pin this call graph: a new `pickle` use, or a new caller of `restore` outside bench/ (scripts
run by hand on snapshots they made), fails them.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from streams.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("monitor", "streams", "alerts", "deploy", "bench")
SECRET = "s3cr3t-SASL-pa55word-7f1c"


def _sources() -> list[Path]:
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 30, files
    return files


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    """(dotted callee, call node) of every call in a file: `yaml.load`, `pickle.loads`, `restore`, ..."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            out.append((_dotted(node.func), node))
    return out


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


UNSAFE_YAML = {"yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all", "yaml.load_all"}
UNSAFE_LOADERS = re.compile(r"\b(yaml\.)?(Unsafe|Full)?Loader\b|\bCLoader\b")
DESERIALIZERS = {"pickle.loads", "pickle.load", "pickle.Unpickler", "marshal.loads", "marshal.load", "shelve.open",
                 "dill.loads", "jsonpickle.decode", "eval", "exec"}


def test_yaml_is_read_with_safe_loaders_only():
    problems = []
    for path in _sources():
        text = path.read_text()
        for callee, call in _calls(path):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if callee in UNSAFE_YAML:
                problems.append(f"{where}: {callee}")
            elif callee == "yaml.load":
                loader = next((ast.unparse(k.value) for k in call.keywords if k.arg == "Loader"),
                              ast.unparse(call.args[1]) if len(call.args) > 1 else None)
                if loader is None or "Safe" not in loader:
                    problems.append(f"{where}: yaml.load(Loader={loader})")
        for lineno, line in enumerate(text.splitlines(), 1):
            if UNSAFE_LOADERS.search(line) and "SafeLoader" not in line:
                problems.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not problems, "unsafe YAML loading:\n" + "\n".join(problems)


def test_the_contract_loader_is_a_safe_loader():
    from monitor.contracts import _ContractLoader

    assert issubclass(_ContractLoader, yaml.SafeLoader)
    assert "tag:yaml.org,2002:python/object/apply" not in _ContractLoader.yaml_constructors
    assert not any(tag.startswith("tag:yaml.org,2002:python/") for tag in _ContractLoader.yaml_multi_constructors)


def test_nothing_is_pickled_or_unpickled_anywhere():
    """Worker state is MessagePack records with a schema (streams/state_records.py): no pickle, marshal, shelve,
    eval or exec in any source file, and no module imports pickle (a forged snapshot must never run code)."""
    users: dict[str, list[str]] = {}
    for path in _sources():
        for callee, call in _calls(path):
            if callee in DESERIALIZERS or callee.startswith(("pickle.", "cPickle.", "_pickle.")):
                users.setdefault(callee, []).append(f"{path.relative_to(ROOT)}:{_function_at(path, call.lineno)}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] in ("pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "copyreg"):
                    users.setdefault(f"import {name}", []).append(str(path.relative_to(ROOT)))
    assert not users, f"deserialization that can run code: {users}"


def test_a_state_record_that_fails_its_schema_is_refused_with_its_key():
    from monitor.engine_state import StateRecordError, TicketRec, decode

    key = b"p0/t/acme\0T1"
    for forged in (b"\x80", b"not msgpack at all", b"\x93\xa4acme\xa2T1\x01"):
        with pytest.raises(StateRecordError, match="p0/t/acme"):
            decode(key, forged, TicketRec)


def _function_at(path: Path, lineno: int) -> str:
    best = "<module>"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno <= lineno <= node.end_lineno:
            best = node.name  # the innermost wins: ast.walk is breadth-first
    return best


# --- secrets ------------------------------------------------------------------------------------------------

SECRET_ENV = {
    "SLAMON_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "SLAMON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "SLAMON_KAFKA__SASL_USERNAME": "slamon",
    "SLAMON_KAFKA__SASL_PASSWORD": SECRET,
    "SLAMON_KAFKA__SSL_KEYFILE_PASSWORD": SECRET + "-key",
}


def test_settings_describe_and_repr_redact_secrets(monkeypatch):
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)
    settings = load_settings(None)
    assert settings.kafka.sasl_password.get_secret_value() == SECRET  # the setting was read
    for text in (str(settings.describe()), repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text


def test_config_file_python_tags_are_not_executed(tmp_path):
    from streams.config import ConfigError

    marker = tmp_path / "executed"
    config = tmp_path / "settings.yaml"
    config.write_text(f"app_id: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises((ConfigError, yaml.YAMLError, ValueError)):
        load_settings(config)
    assert not marker.exists()


def test_alerting_config_python_tags_are_not_executed(tmp_path):
    from alerts.config import load_alerting

    marker = tmp_path / "executed"
    config = tmp_path / "alerting.yaml"
    config.write_text(f"defaults: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do; executing is the failure
        load_alerting(str(config))
    assert not marker.exists()


@pytest.mark.slow
def test_worker_log_has_no_secret(tmp_path):
    """A real worker process with SASL settings from the environment (no broker: it keeps retrying) logs its
    settings at start, and its connection errors, with debug logging on; the password appears nowhere."""
    from tests.support.procs import free_port

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}, **SECRET_ENV,
           "PYTHONPATH": str(ROOT), "SLAMON_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "SLAMON_CONTRACTS": str(ROOT / "examples/contracts.yaml"), "SLAMON_APP_ID": f"secret-{os.getpid()}",
           "SLAMON_METRICS_BIND": f"127.0.0.1:{free_port()}", "SLAMON_DATA_DIR": str(tmp_path / "data"),
           "SLAMON_LOG_LEVEL": "debug"}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and b"settings:" not in log.read_bytes() and proc.poll() is None:
                time.sleep(0.5)
            time.sleep(3)  # a few connection attempts
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    text = log.read_bytes().decode(errors="replace")
    assert "settings:" in text and '"sasl_password":"**********"' in text.replace(" ", ""), text[-3000:]
    assert SECRET not in text
    assert not any(SECRET.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_generated_files_have_no_secret(tmp_path, monkeypatch):
    """`slamon rules / alertmanager / dashboards` with every secret-bearing variable set: the files refer to
    secrets by path (`*_file`) only; no value of a secret variable is written."""
    from slamon.cli import main

    secret_files = {}
    for name in ("SLAMON_PAGERDUTY_ROUTING_KEY_FILE", "SLAMON_SLACK_API_URL_FILE", "SLAMON_SMTP_PASSWORD_FILE",
                 "SLAMON_WEBHOOK_TOKEN_FILE"):
        f = tmp_path / "secrets" / name.lower()
        f.parent.mkdir(exist_ok=True)
        f.write_text(f"{SECRET}-{name}")
        secret_files[name] = f
        monkeypatch.setenv(name, str(f))
    for k, v in {**SECRET_ENV, "SLAMON_EMAIL_TO": "ops@example.com", "SLAMON_EMAIL_FROM": "slamon@example.com",
                 "SLAMON_SMTP_HOST": "smtp.example.com:587", "SLAMON_SMTP_USER": "slamon",
                 "SLAMON_WEBHOOK_URL": "https://hooks.example.com/slamon", "SLAMON_GRAFANA_TOKEN": SECRET}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    assert main(["rules", str(ROOT / "examples/contracts.yaml"), "-o", str(out / "rules")]) == 0
    assert main(["alertmanager", "-o", str(out / "alertmanager.yml")]) == 0
    assert main(["dashboards", "-o", str(out / "dashboards")]) == 0
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 3
    for path in written:
        assert SECRET not in path.read_text(errors="replace"), path
    am = (out / "alertmanager.yml").read_text()
    assert str(secret_files["SLAMON_PAGERDUTY_ROUTING_KEY_FILE"]) in am  # referenced by path, as documented
