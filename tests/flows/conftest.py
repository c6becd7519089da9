"""Flow-test fixtures: one Prefect test harness (temporary local server) per test session,
and a fresh store (SQLite data dir, local registry) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from storage.db import Database, get_database


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Run flows in this session against a throwaway Prefect database."""
    with prefect_test_harness(server_startup_timeout=180):  # 2 shared cores: starts slowly
        yield


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The embedded store in this test's own data dir, publishing to the local registry."""
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    db = get_database()
    yield db
    db.dispose()
