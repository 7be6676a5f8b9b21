"""Where a Rust toolchain is installed, `pip install -e .` must have built every compiled hot path (native/), else
their differential tests would quietly skip and the product would run its slower Python references unnoticed. Each
test file beside names its module's reference: test_jobs_router, test_open_clocks_compiled,
test_ticket_records_compiled."""

from __future__ import annotations

import importlib
import os
import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CARGO = shutil.which("cargo") or (Path.home() / ".cargo/bin/cargo" if (Path.home() / ".cargo/bin/cargo").exists()
                                   else None)
# module -> (where its switch lives, the switch, the environment variable that forces the Python reference)
PATHS = {
    "slamon._router": ("slamon.jobs", "COMPILED_ROUTER", "SLAMON_ROUTER"),
    "monitor._open_clocks": ("monitor.open_clock_index", "COMPILED_BUILD", "SLAMON_OPEN_CLOCKS"),
    "monitor._ticket_records": ("monitor.engine_state", "COMPILED_LOADER", "SLAMON_TICKET_RECORDS"),
}


def test_every_compiled_module_is_listed_here():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert {ext["target"] for ext in project["tool"]["setuptools-rust"]["ext-modules"]} == set(PATHS)


@pytest.mark.skipif(CARGO is None, reason="no Rust toolchain here: the install skips the compiled paths")
@pytest.mark.parametrize("module", sorted(PATHS))
def test_the_path_is_compiled_where_rust_is_installed(module):
    owner, switch, variable = PATHS[module]
    if os.environ.get(variable, "").strip().lower() == "python":
        pytest.skip(f"{variable}=python")
    assert getattr(importlib.import_module(owner), switch), \
        f"cargo at {CARGO}, but {module} is not built: see the `pip install -e .` output"


def test_a_worker_says_when_its_compiled_paths_are_not_in_use(monkeypatch):
    from monitor import engine_state, open_clock_index
    from streams.app import compiled_paths_warning

    monkeypatch.setattr(engine_state, "COMPILED_LOADER", True)
    monkeypatch.setattr(open_clock_index, "COMPILED_BUILD", True)
    assert compiled_paths_warning() is None
    monkeypatch.setattr(open_clock_index, "COMPILED_BUILD", False)
    said = compiled_paths_warning()
    assert "monitor._open_clocks (SLAMON_OPEN_CLOCKS)" in said and "_ticket_records" not in said
    assert "Rust 1.82" in said
