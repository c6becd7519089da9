"""Local registry: atomic, idempotent, checked publishing under injected crashes."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Channel, ModelVersion
from storage.registry import (
    ChecksumMismatchError,
    FileSpec,
    LocalRegistry,
    NotPublishedError,
    RegistryError,
)
from storage.registry import local as local_backend
from storage.repo import versions as version_repo
from tests.storage.registry.conftest import make_export, make_spec


def rows(db: Database) -> list[ModelVersion]:
    with db.transaction() as session:
        return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def channel_count(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count(Channel.id))) or 0)


def test_publish_lays_out_files_manifest_and_row(registry: LocalRegistry, export_dir: Path) -> None:
    gguf = make_export(export_dir, "student-q8_0.gguf")
    f16 = make_export(export_dir, "student-f16.gguf", size=8192)
    published = registry.publish(make_spec(), [gguf, f16], card="# card\n")

    assert (published.version, published.status, published.reused) == (1, "published", False)
    version_dir = registry.artifact_root / "models/smol-student/1"
    assert sorted(p.name for p in version_dir.iterdir()) == [
        "README.md",
        "manifest.json",
        "student-f16.gguf",
        "student-q8_0.gguf",
    ]
    by_name = {f["name"]: f for f in published.files}
    q8 = by_name["student-q8_0.gguf"]
    assert q8["path"] == "models/smol-student/1/student-q8_0.gguf"
    assert q8["sha256"] == hashlib.sha256(gguf.path.read_bytes()).hexdigest()
    assert (q8["size"], q8["quantization"], q8["format"]) == (4096, "Q8_0", "gguf")
    assert (registry.artifact_root / q8["path"]).read_bytes() == gguf.path.read_bytes()

    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert published.manifest_path == "models/smol-student/1/manifest.json"
    assert manifest["version"] == 1 and manifest["min_app_version"] == "1.4.0"
    assert manifest["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert manifest["lineage"]["snapshot_fingerprint"] == "ab" * 32
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
        n: f["sha256"] for n, f in by_name.items()
    }
    (row,) = rows(registry.database)
    assert row.status == "published" and row.published_at is not None
    assert row.teacher == "Qwen/Qwen2.5-7B-Instruct" and row.gate["decision"] == "promote"
    assert not list((registry.artifact_root / "models/smol-student").glob(".staging-*"))


def test_versions_are_numbered_per_student(registry: LocalRegistry, export_dir: Path) -> None:
    a1 = registry.publish(make_spec("alpha"), [make_export(export_dir / "1")])
    a2 = registry.publish(make_spec("alpha"), [make_export(export_dir / "2")])
    b1 = registry.publish(make_spec("beta"), [make_export(export_dir / "3")])
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)


def test_publishing_the_same_files_twice_stores_nothing_twice(
    registry: LocalRegistry, export_dir: Path
) -> None:
    files = [make_export(export_dir)]
    first = registry.publish(make_spec(), files)
    again = registry.publish(make_spec(), files)
    explicit = registry.publish(make_spec(), files, version=first.version)
    assert again.reused and explicit.reused
    assert again.version == explicit.version == first.version
    assert len(rows(registry.database)) == 1
    assert [p.name for p in (registry.artifact_root / "models/smol-student").iterdir()] == ["1"]


def test_an_existing_version_with_other_files_is_refused(
    registry: LocalRegistry, export_dir: Path
) -> None:
    registry.publish(make_spec(), [make_export(export_dir / "a")])
    with pytest.raises(RegistryError, match="version 1 already exists with other files"):
        registry.publish(make_spec(), [make_export(export_dir / "b")], version=1)


def test_sha256_or_size_mismatch_is_refused_before_anything_is_written(
    registry: LocalRegistry, export_dir: Path
) -> None:
    good = make_export(export_dir)
    wrong_hash = FileSpec(path=good.path, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch for student-q8_0.gguf"):
        registry.publish(make_spec(), [wrong_hash])
    with pytest.raises(ChecksumMismatchError, match="size mismatch"):
        registry.publish(make_spec(), [FileSpec(path=good.path, size=1)])
    assert rows(registry.database) == []
    assert not (registry.artifact_root / "models").exists()


def test_bad_input_is_named(registry: LocalRegistry, export_dir: Path) -> None:
    with pytest.raises(RegistryError, match="invalid student name"):
        registry.publish(make_spec("../etc"), [make_export(export_dir)])
    with pytest.raises(RegistryError, match="list of exported files is empty"):
        registry.publish(make_spec(), [])
    with pytest.raises(RegistryError, match="does not exist"):
        registry.publish(make_spec(), [FileSpec(path=export_dir / "missing.gguf")])


def test_failure_after_files_before_transaction_advertises_nothing_and_rerun_completes(
    registry: LocalRegistry, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [make_export(export_dir)]

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected crash before the publish transaction")

    monkeypatch.setattr(version_repo, "mark_published", crash)
    with pytest.raises(RuntimeError, match="injected crash"):
        registry.publish(make_spec(), files)
    (row,) = rows(registry.database)
    assert row.status == "pending" and row.published_at is None
    with pytest.raises(NotPublishedError, match="not 'published'"):
        registry.promote("smol-student", 1)
    assert channel_count(registry.database) == 0

    monkeypatch.undo()
    published = registry.publish(make_spec(), files)
    assert (published.version, published.status, published.reused) == (1, "published", False)
    assert [r.status for r in rows(registry.database)] == ["published"]
    registry.promote("smol-student", 1)
    assert channel_count(registry.database) == 1


def test_crash_between_staging_and_rename_leaves_nothing_visible_and_rerun_cleans_up(
    registry: LocalRegistry, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [make_export(export_dir)]

    def crash(staging: Path, final: Path) -> None:
        raise OSError("injected crash before rename")

    monkeypatch.setattr(local_backend, "rename_into_place", crash)
    with pytest.raises(OSError, match="injected crash"):
        registry.publish(make_spec(), files)
    student_dir = registry.artifact_root / "models/smol-student"
    assert [p.name.startswith(".staging-1-") for p in student_dir.iterdir()] == [True]
    assert not (student_dir / "1").exists()
    assert [r.status for r in rows(registry.database)] == ["pending"]

    monkeypatch.undo()
    published = registry.publish(make_spec(), files)
    assert published.status == "published" and not published.reused
    assert [p.name for p in student_dir.iterdir()] == ["1"]
    assert (student_dir / "1" / "student-q8_0.gguf").read_bytes() == files[0].path.read_bytes()


def test_a_partial_version_directory_of_a_pending_row_is_replaced(
    registry: LocalRegistry, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [make_export(export_dir)]
    monkeypatch.setattr(version_repo, "mark_published", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        registry.publish(make_spec(), files)
    monkeypatch.undo()
    placed = registry.artifact_root / "models/smol-student/1/student-q8_0.gguf"
    placed.write_bytes(b"truncated")  # e.g. a disk that lost the tail of the file
    published = registry.publish(make_spec(), files)
    assert published.status == "published"
    assert placed.read_bytes() == files[0].path.read_bytes()


def test_cleanup_staging_removes_leftovers(registry: LocalRegistry, export_dir: Path) -> None:
    registry.publish(make_spec(), [make_export(export_dir)])
    leftover = registry.artifact_root / "models/smol-student/.staging-7-abc"
    leftover.mkdir()
    (leftover / "x.gguf").write_bytes(b"x")
    assert registry.cleanup_staging() == []  # recent: may belong to a publish under way
    assert registry.cleanup_staging(older_than_s=0) == [leftover]
    assert [p.name for p in leftover.parent.iterdir()] == ["1"]


def test_concurrent_publishers_get_distinct_version_numbers(
    registry: LocalRegistry, export_dir: Path
) -> None:
    files = [[make_export(export_dir / str(i))] for i in range(4)]
    results: list[int] = []
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            results.append(registry.publish(make_spec(), files[i]).version)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4]
