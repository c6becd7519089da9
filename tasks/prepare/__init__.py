"""The prepare stage: feedback rows to a versioned, leak-free dataset snapshot."""

from tasks.prepare.config import PrepareConfig, SnapshotInfo
from tasks.prepare.snapshot import build_snapshot, code_version, previous_test_splits
from tasks.prepare.store import load_negatives, load_snapshot, read_manifest

__all__ = [
    "PrepareConfig",
    "SnapshotInfo",
    "build_snapshot",
    "code_version",
    "load_negatives",
    "load_snapshot",
    "previous_test_splits",
    "read_manifest",
]
