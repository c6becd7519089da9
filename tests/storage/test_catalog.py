"""Catalog reads: stable releases, published paths, history, and the change key."""

from __future__ import annotations

from storage.db import Database
from storage.models import Channel, ChannelEvent, ModelVersion, utcnow
from storage.repo.catalog import (
    catalog_state,
    channel_events,
    channel_pointers,
    channel_releases,
    published_file_paths,
    version_history,
)

FILES = [{"name": "m.gguf", "path": "s/v1/m.gguf", "size": 3, "sha256": "a", "quantization": "F16"}]
HUB = [{"name": "h.gguf", "path": "h.gguf", "url": "https://hub/h.gguf", "size": 1, "sha256": "b"}]


def add(db: Database, version: int, status: str, files: list, promote: bool) -> int:
    with db.transaction(write=True) as session:
        mv = ModelVersion(
            student="s",
            version=version,
            base_model="base",
            files=files,
            status=status,
            published_at=utcnow() if status == "published" else None,
        )
        session.add(mv)
        session.flush()
        if promote:
            channel = session.query(Channel).filter_by(student="s", name="stable").one_or_none()
            if channel is None:
                session.add(Channel(student="s", name="stable", model_version_id=mv.id))
            else:
                channel.model_version_id = mv.id
                channel.updated_at = utcnow()
            session.add(
                ChannelEvent(student="s", channel="stable", action="promote", to_version_id=mv.id)
            )
        return mv.id


def state(db: Database) -> tuple:
    with db.transaction() as session:
        return catalog_state(session=session)


def test_empty_catalog(db: Database) -> None:
    with db.transaction() as session:
        assert channel_releases(session=session) == []
        assert published_file_paths(session=session) == set()
        assert version_history(session=session, student="s") == []


def test_releases_paths_history_and_state_key(db: Database) -> None:
    empty = state(db)
    v1 = add(db, 1, "published", FILES, promote=True)
    after_v1 = state(db)
    assert after_v1 != empty
    add(db, 2, "pending", [], promote=False)
    after_pending = state(db)
    assert after_pending != after_v1  # a new version row changes the key
    v3 = add(db, 3, "published", FILES + HUB, promote=True)
    assert state(db) != after_pending
    assert state(db) == state(db)

    with db.transaction() as session:
        (release,) = channel_releases(session=session)
        assert (release.student, release.version, release.model_version_id) == ("s", 3, v3)
        assert release.files == FILES + HUB
        assert channel_releases(session=session, channel="beta") == []
        assert published_file_paths(session=session) == {"s/v1/m.gguf"}  # Hub files excluded
        assert [v.version for v in version_history(session=session, student="s")] == [3, 2, 1]
        assert channel_pointers(session=session, student="s") == {"stable": v3}
        assert [e.to_version_id for e in channel_events(session=session, student="s")] == [v1, v3]
