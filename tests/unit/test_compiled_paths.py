"""Where a Rust toolchain is installed, `pip install -e .` must have built every compiled hot path (native/), else
their differential tests would quietly skip and the product would run its slower Python references unnoticed. Each
test file beside names its module's reference: test_jobs_router, test_open_clocks_compiled,
test_ticket_records_compiled, test_engine_decoder and tests/property/test_compiled_engine. `monitor.compiled.PATHS` is
what a worker reports at start."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

import monitor.compiled_replay
import monitor.engine_state
import monitor.open_clock_index
import slamon.jobs  # noqa: F401 - each owner registers its path when imported
from monitor.compiled import PATHS, CompiledPath
from streams.app import compiled_paths_warning

ROOT = Path(__file__).resolve().parents[2]
CARGO = shutil.which("cargo") or (Path.home() / ".cargo/bin/cargo" if (Path.home() / ".cargo/bin/cargo").exists()
                                   else None)
TARGETS = {ext["target"] for ext in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
           ["tool"]["setuptools-rust"]["ext-modules"]}


def test_every_compiled_module_is_registered_by_its_owner():
    assert set(PATHS) == TARGETS
    assert PATHS["monitor._ticket_records"].in_use == monitor.engine_state.COMPILED_LOADER
    assert PATHS["monitor._open_clocks"].in_use == monitor.open_clock_index.COMPILED_BUILD
    assert PATHS["monitor._engine"].in_use == monitor.compiled_replay.IN_USE


@pytest.mark.skipif(CARGO is None, reason="no Rust toolchain here: the install skips the compiled paths")
@pytest.mark.parametrize("module", sorted(TARGETS))
def test_the_path_is_compiled_where_rust_is_installed(module):
    path = PATHS[module]
    if path.forced_off:
        pytest.skip(f"{path.variable}=python")
    assert path.built, f"cargo at {CARGO}, but {module} is not built: see the `pip install -e .` output"


def test_a_worker_says_when_its_compiled_paths_are_not_in_use(monkeypatch):
    paths = {"monitor._open_clocks": CompiledPath("monitor._open_clocks", "SLAMON_OPEN_CLOCKS", True, False)}
    monkeypatch.setattr("streams.app.PATHS", paths)
    assert compiled_paths_warning() is None
    paths["monitor._ticket_records"] = CompiledPath("monitor._ticket_records", "SLAMON_TICKET_RECORDS", False, False)
    paths["slamon._router"] = CompiledPath("slamon._router", "SLAMON_ROUTER", True, True)
    said = compiled_paths_warning()
    assert "monitor._ticket_records (not built)" in said and "slamon._router (SLAMON_ROUTER=python)" in said
    assert "_open_clocks" not in said and "Rust 1.82" in said
