"""The worker's Kafka consumer settings that faust fixes and slamon overrides (no broker needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.contracts import load_contracts
from streams.app import SlamonConsumerThread, create_app
from streams.config import load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"


def _fetch_max_wait_ms(tmp_path: Path, **overrides) -> int:
    settings = load_settings(None, kafka={"bootstrap_servers": "127.0.0.1:9"}, contracts=str(EXAMPLES),
                             data_dir=str(tmp_path), **overrides)

    async def build() -> int:
        app = create_app(settings, load_contracts(EXAMPLES), 4)
        thread = app.consumer._thread
        assert isinstance(thread, SlamonConsumerThread)
        return thread._create_worker_consumer(app.transport)._fetch_max_wait_ms

    return asyncio.run(build())


def test_fetch_max_wait_defaults_to_50ms_not_fausts_1500(tmp_path):
    # a fetch for idle partitions holds the busy ones back this long (halved throughput at 1500 ms)
    assert _fetch_max_wait_ms(tmp_path) == 50


def test_fetch_max_wait_from_settings(tmp_path):
    assert _fetch_max_wait_ms(tmp_path, fetch_max_wait_ms=250) == 250
