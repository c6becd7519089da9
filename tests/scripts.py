"""Load a script of the repository (tools/, bench/) as a module, for its tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str, name: str) -> ModuleType:
    """`relative` (e.g. "tools/wheelhouse.py") imported as module `name`.

    The module is registered in `sys.modules` first: dataclasses look their module up there.
    """
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec and spec.loader, relative
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
