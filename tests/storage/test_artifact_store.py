"""The shared artifact store: folders pushed by one host, fetched whole by another."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from storage.artifact_store import (
    COMPLETE,
    ArtifactMissingError,
    ArtifactStore,
    fetch_published,
)
from storage.config import StorageSettings


@pytest.fixture(params=["file", "s3"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store on a shared mount (file://) and on an S3 endpoint (moto's server)."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_store"))
    url = f"file://{tmp_path / 'shared'}"
    monkeypatch.setenv("DISTILLERY_ARTIFACT_STORE", url)
    return url


def _host(tmp_path: Path, name: str) -> ArtifactStore:
    """The store as a host with its own artifact root sees it (settings from the environment)."""
    settings = StorageSettings(data_dir=tmp_path / name)
    return ArtifactStore.from_settings(settings)


def _folder(root: Path) -> Path:
    folder = root / "runs" / "students" / "s" / "snapshot-1" / "adapter"
    (folder / "sub").mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 5000)
    return folder


def test_a_folder_pushed_on_one_host_is_fetched_whole_on_another(
    store_url: str, tmp_path: Path
) -> None:
    a, b = _host(tmp_path, "a"), _host(tmp_path, "b")
    assert a.shared and a.url == store_url
    pushed = _folder(a.local_root)
    a.push(pushed)
    there = b.local_root / a.key(pushed)
    assert not there.exists()
    assert b.fetch(there) == there
    assert (there / "adapter_config.json").read_text() == '{"r": 8}'
    assert (there / "sub" / "weights.bin").read_bytes() == b"\x00\x01" * 5000
    assert not (there / COMPLETE).exists()  # the marker stays in the store
    assert sorted(p.name for p in there.parent.iterdir()) == ["adapter"]  # no temp left over
    # A file inside a pushed folder comes with its folder.
    c = _host(tmp_path, "c")
    inner = c.local_root / a.key(pushed) / "sub" / "weights.bin"
    assert c.fetch(inner).stat().st_size == 10000
    assert b.uri(there) == f"{store_url}/runs/students/s/snapshot-1/adapter"


def test_a_folder_whose_upload_never_finished_is_missing_with_its_uri(
    store_url: str, tmp_path: Path
) -> None:
    a, b = _host(tmp_path, "a"), _host(tmp_path, "b")
    pushed = _folder(a.local_root)
    a.push(pushed)
    fs, base = fsspec.core.url_to_fs(store_url)
    fs.rm(f"{base}/{a.key(pushed)}/{COMPLETE}")  # as if the pushing host died mid-upload
    with pytest.raises(ArtifactMissingError, match=f"{store_url}/runs/students/s/snapshot-1"):
        b.fetch(b.local_root / a.key(pushed))
    assert not (b.local_root / a.key(pushed)).exists()
    with pytest.raises(ArtifactMissingError, match="is not in the artifact store"):
        b.fetch(b.local_root / "runs" / "never")


def test_a_pushed_file_is_uploaded_once_and_a_pointer_refreshes(
    store_url: str, tmp_path: Path
) -> None:
    a, b = _host(tmp_path, "a"), _host(tmp_path, "b")
    pointer = a.local_root / "teachers" / "t" / "current.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"adapter_dir": "runs/teacher/1"}))
    a.push(pointer)
    local = b.local_root / "teachers" / "t" / "current.json"
    assert json.loads(b.refresh(local).read_text()) == {"adapter_dir": "runs/teacher/1"}
    pointer.write_text(json.dumps({"adapter_dir": "runs/teacher/2"}))  # moved on by host A
    a.push(pointer)
    assert json.loads(b.refresh(local).read_text()) == {"adapter_dir": "runs/teacher/2"}
    # A folder pushed twice with the same files is not sent again (its marker is unchanged).
    folder = _folder(a.local_root)
    a.push(folder)
    fs, base = fsspec.core.url_to_fs(store_url)
    marker = f"{base}/{a.key(folder)}/{COMPLETE}"
    before = fs.cat_file(marker)
    fs.rm(f"{base}/{a.key(folder)}/adapter_config.json")
    a.push(folder)  # skipped: the store says it is complete with these sizes
    assert fs.cat_file(marker) == before and not fs.exists(
        f"{base}/{a.key(folder)}/adapter_config.json"
    )


def test_published_paths_never_leave_the_root(store_url: str, tmp_path: Path) -> None:
    a = _host(tmp_path, "a")
    for hostile in ("../escape.gguf", "/etc/passwd", "models/./x", ""):
        assert fetch_published(a, a.local_root, hostile) is False
    assert fetch_published(a, a.local_root, "models/s/1/missing.gguf") is False
    assert not (tmp_path / "escape.gguf").exists()


def test_without_a_store_the_artifact_root_is_the_store(tmp_path: Path) -> None:
    one = ArtifactStore.from_settings(StorageSettings(data_dir=tmp_path / "one"))
    assert not one.shared
    folder = _folder(one.local_root)
    one.push(folder)  # nothing to send
    assert one.fetch(folder) == folder and one.uri(folder) == str(folder)
    with pytest.raises(ArtifactMissingError, match="does not exist"):
        one.fetch(one.local_root / "runs" / "gone")
    # A store URL naming the artifact root itself is the same single host.
    same = StorageSettings(data_dir=tmp_path / "one", artifact_store=f"file://{one.local_root}")
    assert not ArtifactStore.from_settings(same).shared


def test_a_marker_naming_a_path_outside_its_folder_is_refused(
    store_url: str, tmp_path: Path
) -> None:
    a, b = _host(tmp_path, "a"), _host(tmp_path, "b")
    pushed = _folder(a.local_root)
    a.push(pushed)
    fs, base = fsspec.core.url_to_fs(store_url)
    marker = {"files": {"../../../escaped.txt": 3}}
    fs.pipe_file(f"{base}/{a.key(pushed)}/{COMPLETE}", json.dumps(marker).encode())
    with pytest.raises(ArtifactMissingError, match="its marker names"):
        b.fetch(b.local_root / a.key(pushed))
    assert not list(tmp_path.rglob("escaped.txt"))
