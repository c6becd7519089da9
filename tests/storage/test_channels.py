"""Channels: promotion, rollback through the audit trail, refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import Database
from storage.registry import (
    LocalRegistry,
    NotPublishedError,
    RegistryError,
    UnknownVersionError,
)
from storage.repo import channels as channel_repo
from storage.repo import versions as version_repo
from tests.storage.registry.conftest import make_export, make_spec

STUDENT = "smol-student"


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> LocalRegistry:
    """A local registry holding published versions 1..3 of one student."""
    reg = LocalRegistry(db, tmp_path / "artifacts")
    for i in range(3):
        reg.publish(make_spec(STUDENT), [make_export(tmp_path / "export" / str(i))])
    return reg


def stable(registry: LocalRegistry) -> int | None:
    with registry.database.transaction() as session:
        channel = channel_repo.get_channel(STUDENT, "stable", session=session)
        if channel is None:
            return None
        row = version_repo.get_version_by_id(channel.model_version_id, session=session)
        return row.version if row else None


def add_pending(registry: LocalRegistry, version: int) -> None:
    with registry.database.transaction(write=True) as session:
        version_repo.create_pending_version(
            session=session, student=STUDENT, version=version, files=[], base_model="b"
        )


def test_promote_moves_the_pointer_and_audits_it(registry: LocalRegistry) -> None:
    first = registry.promote(STUDENT, 1, reason="initial", actor="pipeline")
    assert (first.from_version, first.to_version, first.moved) == (None, 1, True)
    second = registry.promote(STUDENT, 2, reason="gate passed")
    assert (second.from_version, second.to_version) == (1, 2)
    assert stable(registry) == 2
    again = registry.promote(STUDENT, 2)
    assert not again.moved
    history = registry.history(STUDENT)
    assert [(h.action, h.from_version, h.to_version, h.reason) for h in history] == [
        ("promote", None, 1, "initial"),
        ("promote", 1, 2, "gate passed"),
    ]


def test_promote_refuses_unpublished_and_unknown_versions(registry: LocalRegistry) -> None:
    add_pending(registry, 4)
    with pytest.raises(NotPublishedError, match="version 4 is 'pending'"):
        registry.promote(STUDENT, 4)
    with pytest.raises(UnknownVersionError, match="has no version 9"):
        registry.promote(STUDENT, 9)
    assert stable(registry) is None


def test_rollback_walks_back_through_previous_stables(registry: LocalRegistry) -> None:
    for v in (1, 2, 3):
        registry.promote(STUDENT, v)
    back = registry.rollback(STUDENT, reason="crash reports", actor="alice")
    assert (back.action, back.from_version, back.to_version) == ("rollback", 3, 2)
    assert stable(registry) == 2
    # A second rollback goes further into the past, not forward to the bad version 3.
    assert registry.rollback(STUDENT).to_version == 1
    with pytest.raises(RegistryError, match="no earlier published version"):
        registry.rollback(STUDENT)
    trail = [(h.action, h.from_version, h.to_version, h.actor) for h in registry.history(STUDENT)]
    assert trail[-2:] == [("rollback", 3, 2, "alice"), ("rollback", 2, 1, "cli")]


def test_rollback_after_a_new_promotion_returns_to_the_one_before(
    registry: LocalRegistry,
) -> None:
    registry.promote(STUDENT, 1)
    registry.promote(STUDENT, 2)
    registry.rollback(STUDENT)  # 2 -> 1
    registry.promote(STUDENT, 3)
    assert registry.rollback(STUDENT).to_version == 1


def test_rollback_to_a_given_version(registry: LocalRegistry) -> None:
    registry.promote(STUDENT, 3)
    moved = registry.rollback(STUDENT, to_version=1, reason="pin")
    assert (moved.from_version, moved.to_version) == (3, 1)
    assert stable(registry) == 1


def test_rollback_refuses_a_version_that_is_not_published(registry: LocalRegistry) -> None:
    registry.promote(STUDENT, 2)
    add_pending(registry, 4)
    with pytest.raises(NotPublishedError, match="only point at a published version"):
        registry.rollback(STUDENT, to_version=4)
    with pytest.raises(UnknownVersionError):
        registry.rollback(STUDENT, to_version=42)
    assert stable(registry) == 2
    assert len(registry.history(STUDENT)) == 1


def test_rollback_without_a_channel_says_so(registry: LocalRegistry) -> None:
    with pytest.raises(RegistryError, match="has no 'stable' channel"):
        registry.rollback(STUDENT)


def test_versions_list_shows_channels(registry: LocalRegistry) -> None:
    registry.promote(STUDENT, 2)
    registry.promote(STUDENT, 3, channel="candidate")
    listed = {v.version: v for v in registry.versions(STUDENT)}
    assert [v.version for v in registry.versions()] == [3, 2, 1]
    assert listed[2].channels == ("stable",) and listed[3].channels == ("candidate",)
    assert listed[1].status == "published" and listed[1].size == 4096
