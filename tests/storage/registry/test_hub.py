"""Hub backend against a loopback stand-in of the Hub's HTTP routes (see hub_standin.py).

The Hugging Face Hub cannot be reached from these machines: these tests run `HubRegistry`
(real `huggingface_hub` 2.4 HfApi, endpoint pointed at 127.0.0.1) against a small FastAPI
app that implements exactly the routes that backend calls, served by uvicorn. Uploads take
the Git LFS path (HF_HUB_DISABLE_XET); the stand-in checks every uploaded object's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.db import Database
from storage.registry import RegistryError
from storage.registry.hub import HubRegistry
from storage.repo import versions as version_repo
from tests.storage.registry.conftest import make_export, make_spec
from tests.storage.registry.hub_standin import HubState, create_standin, serve

# huggingface_hub hands httpx2 a file object for LFS PUTs, which httpx2 flags as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:httpx2.*")
TOKEN = "hf_standin_token"
CARD = """---
license: apache-2.0
model-index:
- name: smol-student
  results:
  - task: {type: text-generation}
    dataset: {name: snapshot test split, type: distillery-snapshot}
    metrics:
    - {type: perplexity, value: 9.4}
---
# smol-student
"""


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[str, HubState]]:
    """The stand-in served by uvicorn on a free loopback port."""
    app, state = create_standin(TOKEN)
    with serve(app) as endpoint:
        yield endpoint, state


@pytest.fixture
def hub(
    standin: tuple[str, HubState], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, HubState]]:
    """A clean stand-in, with offline mode lifted for loopback and uploads over LFS."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    endpoint, state = standin
    state.repos.clear(), state.lfs.clear(), state.calls.clear(), state.unknown.clear()
    yield endpoint, state


def make_registry(
    db: Database, tmp_path: Path, endpoint: str, token: str = TOKEN, private: bool = True
) -> HubRegistry:
    return HubRegistry(
        db,
        tmp_path / "artifacts",
        namespace="acme",
        token=token,
        endpoint=endpoint,
        private=private,
    )


def test_publish_creates_repo_branch_commit_tag_and_pinned_urls(
    sqlite_db: Database, tmp_path: Path, hub: tuple[str, HubState]
) -> None:
    endpoint, state = hub
    registry = make_registry(sqlite_db, tmp_path, endpoint)
    gguf = make_export(tmp_path / "export")
    published = registry.publish(make_spec(), [gguf], card=CARD)

    repo = state.repos["acme/smol-student"]
    assert repo.private
    revision = published.hub_revision
    assert revision and repo.branches["v1"] == revision and repo.tags["release-v1"] == revision
    tree = repo.commits[revision]
    assert tree["student-q8_0.gguf"] == gguf.path.read_bytes()
    assert "student-q8_0.gguf" in repo.lfs_paths  # uploaded through the LFS batch API
    assert tree["README.md"].decode() == CARD
    manifest = json.loads(tree["manifest.json"])
    assert manifest["version"] == 1 and manifest["lineage"]["teacher"] == "Qwen/Qwen2.5-7B-Instruct"

    (entry,) = published.files
    assert entry["url"] == f"{endpoint}/acme/smol-student/resolve/{revision}/student-q8_0.gguf"
    body = httpx.get(entry["url"], headers={"authorization": f"Bearer {TOKEN}"}).content
    assert hashlib.sha256(body).hexdigest() == entry["sha256"] == manifest["files"][0]["sha256"]
    assert published.manifest_path == f"{endpoint}/acme/smol-student/resolve/v1/manifest.json"
    assert state.unknown == []
    assert {path.split("/")[-1] for _, path in state.calls if "/lfs-objects/" in path} >= {
        entry["sha256"],
        "verify",
    }

    registry.promote("smol-student", 1)
    assert [v.channels for v in registry.versions("smol-student")] == [("stable",)]


def test_second_version_gets_its_own_branch_and_tag(
    sqlite_db: Database, tmp_path: Path, hub: tuple[str, HubState]
) -> None:
    endpoint, state = hub
    registry = make_registry(sqlite_db, tmp_path, endpoint, private=False)
    registry.publish(make_spec(), [make_export(tmp_path / "a")], card=CARD)
    second = registry.publish(make_spec(), [make_export(tmp_path / "b")], card=CARD)
    repo = state.repos["acme/smol-student"]
    assert not repo.private
    assert second.version == 2
    assert repo.tags["release-v2"] == repo.branches["v2"] == second.hub_revision
    assert repo.tags["release-v1"] != second.hub_revision


def test_crash_after_upload_advertises_nothing_and_rerun_reuses_the_commit(
    sqlite_db: Database, tmp_path: Path, hub: tuple[str, HubState], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, state = hub
    registry = make_registry(sqlite_db, tmp_path, endpoint)
    files = [make_export(tmp_path / "export")]
    original = version_repo.mark_published
    monkeypatch.setattr(version_repo, "mark_published", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        registry.publish(make_spec(), files, card=CARD)
    assert [v.status for v in registry.versions("smol-student")] == ["pending"]
    first_commit = state.repos["acme/smol-student"].branches["v1"]
    uploads = sum(1 for method, _ in state.calls if method == "PUT")

    monkeypatch.setattr(version_repo, "mark_published", original)
    published = registry.publish(make_spec(), files, card=CARD)
    assert published.status == "published" and published.version == 1
    # Nothing changed, so huggingface_hub made no second commit and uploaded nothing again.
    assert published.hub_revision == first_commit
    assert state.repos["acme/smol-student"].tags["release-v1"] == first_commit
    assert sum(1 for method, _ in state.calls if method == "PUT") == uploads


def test_a_wrong_token_publishes_nothing(
    sqlite_db: Database, tmp_path: Path, hub: tuple[str, HubState]
) -> None:
    endpoint, state = hub
    registry = make_registry(sqlite_db, tmp_path, endpoint, token="hf_wrong")
    with pytest.raises(Exception, match="401"):
        registry.publish(make_spec(), [make_export(tmp_path / "export")], card=CARD)
    assert state.repos == {}
    assert [v.status for v in registry.versions()] == ["pending"]


def test_invalid_card_metadata_is_refused_before_upload(
    sqlite_db: Database, tmp_path: Path, hub: tuple[str, HubState]
) -> None:
    endpoint, state = hub
    registry = make_registry(sqlite_db, tmp_path, endpoint)
    bad = "---\nmodel-index:\n- name: x\n  results:\n  - task: {}\n---\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        registry.publish(make_spec(), [make_export(tmp_path / "export")], card=bad)
    assert state.lfs == {}


def test_hub_registry_needs_a_namespace(sqlite_db: Database, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="namespace"):
        HubRegistry(sqlite_db, tmp_path, namespace="", token=TOKEN)
