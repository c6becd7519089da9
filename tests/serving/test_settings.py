"""ServiceSettings from the environment: DISTILLERY_* names, comma lists, bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.settings import ServiceSettings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DISTILLERY_QUANTIZATION_PREFERENCE", "Q8_0, F16")
    monkeypatch.setenv("DISTILLERY_MAX_INTERACTIONS", "10")
    monkeypatch.setenv("DISTILLERY_PUBLIC_BASE_URL", "https://cdn.example")
    settings = ServiceSettings(_env_file=None)
    assert settings.quantization_preference == ["Q8_0", "F16"]
    assert settings.max_interactions == 10
    assert settings.max_body_bytes == 2 * 1024 * 1024
    assert settings.public_base_url == "https://cdn.example"


def test_bad_limit_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLERY_MAX_BODY_BYTES", "0")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        ServiceSettings(_env_file=None)
