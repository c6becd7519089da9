"""Materialized test models go to one temporary data dir per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def models_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared by this session's tests so tiny presets materialize once."""
    return tmp_path_factory.mktemp("distillery-data")


@pytest.fixture(autouse=True)
def _data_dir(models_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(models_data_dir))
    return models_data_dir
