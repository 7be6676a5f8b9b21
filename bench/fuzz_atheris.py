"""Coverage-guided fuzzing of the event decoder and the contract loader with atheris (libFuzzer), run by hand.

    pip install atheris==3.0.0          # not a project dependency: a manylinux wheel for CPython 3.11
    python bench/fuzz_atheris.py decoder -max_total_time=120 -print_final_stats=1
    python bench/fuzz_atheris.py contracts -max_total_time=120 -print_final_stats=1 [CORPUS_DIR]

Properties checked on every input (a failure aborts with the input saved as crash-*):
  decoder    decode_event never raises, returns an event of a known client or a Rejection whose reason is
             one of the decoder's, the same bytes give the same result, and the reason/detail/ids encode
             as UTF-8 (the worker puts them in Kafka headers);
  contracts  parse_contracts returns Contracts or raises ContractError, never another exception.
The contracts corpus is seeded with examples/*.yaml. Figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from monitor.contracts import ContractError, parse_contracts
    from monitor.events import INVALID, MALFORMED, OVERSIZED, UNKNOWN_CLIENT, Rejection, decode_event

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = frozenset({"acme", "globex"})
DECODER_REASONS = {MALFORMED, INVALID, UNKNOWN_CLIENT, OVERSIZED}


def fuzz_decoder(data: bytes) -> None:
    first = decode_event(data, CLIENTS)
    assert first == decode_event(data, CLIENTS), "not deterministic"
    if isinstance(first, Rejection):
        assert first.reason in DECODER_REASONS, first
        first.detail.encode()
        for value in (first.event_id, first.client):
            if value is not None:
                assert len(value) <= 128
                value.encode()
    else:
        assert first.client in CLIENTS
        first.event_id.encode()


def fuzz_contracts(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        parse_contracts(data.decode("utf-8", "replace"), "fuzz.yaml")


def main() -> None:
    target = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("decoder", "contracts") else "decoder"
    if target == "contracts" and not any(not a.startswith("-") for a in sys.argv[1:]):
        corpus = Path("/tmp/slamon-atheris-contracts")
        corpus.mkdir(exist_ok=True)
        for path in (ROOT / "examples").glob("*contracts*.yaml"):
            (corpus / path.name).write_bytes(path.read_bytes())
        sys.argv.append(str(corpus))
    atheris.Setup(sys.argv, fuzz_decoder if target == "decoder" else fuzz_contracts)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
