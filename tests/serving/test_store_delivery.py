"""Published files from a shared artifact store: streamed from this host or redirected."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.artifact_store import ArtifactStore
from storage.db import Database
from tests.serving.catalog_rows import add_version, write_artifact

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 64  # 16384 bytes
REL = "models/s/1/model.Q4_K_M.gguf"


@pytest.fixture
def published_elsewhere(s3_store: str, db: Database, tmp_path: Path) -> str:
    """v1 published on another host: its file is in the store, not in this service's root."""
    other = tmp_path / "publisher" / "artifacts"
    entry = write_artifact(other, REL, DATA)
    ArtifactStore(local_root=other.resolve(), url=s3_store).push(other / REL)
    add_version(db, "s", 1, [entry])
    return str(entry["sha256"])


async def _client(db: Database, root: Path, delivery: str) -> httpx.AsyncClient:
    settings = ServiceSettings(
        _env_file=None,
        manifest_cache_seconds=0,
        allowed_hosts=["testserver"],
        artifact_delivery=delivery,  # type: ignore[arg-type]
    )
    app = create_app(settings=settings, database=db, artifact_root=root)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_stream_copies_the_file_once_and_serves_ranges(
    published_elsewhere: str, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "service" / "artifacts"
    async with await _client(db, root, "stream") as client:
        whole = await client.get(f"/api/artifacts/{REL}")
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).hexdigest() == published_elsewhere
        part = await client.get(f"/api/artifacts/{REL}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == DATA[100:200]
        # Only files a published version lists come from the store.
        assert (await client.get("/api/artifacts/models/s/1/other.gguf")).status_code == 404
    assert (root / REL).read_bytes() == DATA  # kept: the next request reads the local copy


async def test_redirect_sends_phones_to_a_presigned_url_that_honours_range(
    published_elsewhere: str, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "service" / "artifacts"
    async with await _client(db, root, "redirect") as client:
        answer = await client.get(f"/api/artifacts/{REL}")
        assert answer.status_code == 307, answer.text
        signed = answer.headers["location"]
        query = parse_qs(urlsplit(signed).query)
        assert "Signature" in query or "X-Amz-Signature" in query, signed
        if "Expires" in query:  # SigV2 names the moment; SigV4 the lifetime
            assert 3000 < int(query["Expires"][0]) - time.time() <= 3600
        else:
            assert query["X-Amz-Expires"] == ["3600"]
        assert (await client.get("/api/artifacts/models/s/1/other.gguf")).status_code == 404
    assert not (root / REL).exists()  # no byte passed through the service
    async with httpx.AsyncClient() as phone:  # the phone follows to the store itself
        whole = await phone.get(signed)
        assert hashlib.sha256(whole.content).hexdigest() == published_elsewhere
        part = await phone.get(signed, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == DATA[100:200]
