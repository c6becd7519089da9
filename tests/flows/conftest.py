"""Flow-test fixtures: one Prefect test harness (temporary local server) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Run flows in this session against a throwaway Prefect database."""
    with prefect_test_harness(server_startup_timeout=180):  # 2 shared cores: starts slowly
        yield
