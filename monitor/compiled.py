"""The compiled hot paths (native/, Rust through PyO3), each optional and each beside its Python reference.

`compiled_module(name, variable)` imports one where `pip install -e .` built it; `<variable>=python` asks for the
reference instead (the module is still returned, for the differential tests). `PATHS` records every path imported
so far and whether it runs compiled: what a worker reports at start (`streams.app.compiled_paths_warning`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class CompiledPath:
    module: str
    variable: str  # `<variable>=python` forces the Python reference
    built: bool
    forced_off: bool

    @property
    def in_use(self) -> bool:
        return self.built and not self.forced_off


PATHS: dict[str, CompiledPath] = {}


def compiled_module(name: str, variable: str) -> tuple[ModuleType | None, bool]:
    """(the module, None where it was not built; whether it runs: built and not forced off)."""
    try:
        module = importlib.import_module(name)
    except ImportError:  # the install without Rust (or with one too old): the reference runs
        module = None
    forced_off = os.environ.get(variable, "").strip().lower() == "python"
    path = PATHS[name] = CompiledPath(name, variable, module is not None, forced_off)
    return module, path.in_use
