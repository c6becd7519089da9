"""A remote teacher's key from a Prefect Secret block when its environment variable is unset."""

from __future__ import annotations

import pytest

from tasks.models.remote import RemoteTeacher, api_key


def test_remote_key_comes_from_a_prefect_secret_block(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    Secret(value="sk-from-block").save("remote-teacher-key", overwrite=True)
    teacher = RemoteTeacher(
        "far",
        "https://example.invalid/v1",
        "m",
        api_key_env="FAR_TEACHER_KEY",
        api_key_secret="remote-teacher-key",
    )
    monkeypatch.delenv("FAR_TEACHER_KEY", raising=False)
    assert api_key(teacher) == "sk-from-block"
    monkeypatch.setenv("FAR_TEACHER_KEY", "sk-from-env")
    assert api_key(teacher) == "sk-from-env"
