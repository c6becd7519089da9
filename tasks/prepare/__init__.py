"""The prepare stage: feedback rows to a versioned, leak-free dataset snapshot."""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: the reader process needs only the light per-row modules, not
# datasets/pyarrow, and spawning it should stay quick.
_EXPORTS = {
    "PrepareConfig": "tasks.prepare.config",
    "SnapshotInfo": "tasks.prepare.config",
    "SnapshotSummary": "tasks.prepare.summary",
    "build_snapshot": "tasks.prepare.snapshot",
    "code_version": "tasks.prepare.snapshot",
    "previous_test_splits": "tasks.prepare.snapshot",
    "load_negatives": "tasks.prepare.store",
    "load_snapshot": "tasks.prepare.store",
    "read_manifest": "tasks.prepare.store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tasks.prepare' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
