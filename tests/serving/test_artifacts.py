"""Artifact downloads: full file, byte ranges, 416, and no way out of the artifact root."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from serving.settings import ServiceSettings
from storage.db import Database
from tests.serving.catalog_rows import add_version, write_artifact

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 40  # 10240 bytes
REL = "models/s/v1/model.Q4_K_M.gguf"
URL = f"/api/artifacts/{REL}"


@pytest.fixture
def published(artifact_root: Path, db: Database, settings: ServiceSettings) -> Path:
    root = artifact_root
    add_version(db, "s", 1, [write_artifact(root, REL, DATA)])
    return root


async def test_full_download(client: httpx.AsyncClient, published: Path) -> None:
    resp = await client.get(URL)
    assert resp.status_code == 200
    assert resp.content == DATA
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["content-length"] == str(len(DATA))
    assert resp.headers["etag"].startswith('"')
    head = await client.head(URL)
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),  # first bytes
        ("bytes=-300", len(DATA) - 300, len(DATA)),  # suffix
        ("bytes=10000-", 10000, len(DATA)),  # open-ended (a resumed download)
        ("bytes=10200-99999", 10200, len(DATA)),  # end past the file is clamped
    ],
)
async def test_ranges(
    client: httpx.AsyncClient, published: Path, header: str, start: int, end: int
) -> None:
    resp = await client.get(URL, headers={"Range": header})
    assert resp.status_code == 206
    assert resp.content == DATA[start:end]
    assert resp.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert resp.headers["content-length"] == str(end - start)


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010", "bytes=-0"])
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, published: Path, header: str
) -> None:
    resp = await client.get(URL, headers={"Range": header})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{len(DATA)}"


async def test_if_range_with_stale_etag_sends_whole_file(
    client: httpx.AsyncClient, published: Path
) -> None:
    resp = await client.get(URL, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert resp.status_code == 200 and resp.content == DATA


@pytest.mark.parametrize(
    "path",
    [
        "models/s/v1/missing.gguf",
        "../secret.txt",
        "models/../../secret.txt",
        "%2e%2e/secret.txt",
        "%252e%252e/secret.txt",
        "..%2fsecret.txt",
        "models/s/v1/..%2F..%2F..%2F..%2Fsecret.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "models\\..\\..\\secret.txt",
        "models/s/v1/link.gguf",
        "models/s/v1/unlisted.gguf",
    ],
)
async def test_nothing_outside_published_files_is_served(
    client: httpx.AsyncClient, db: Database, published: Path, path: str
) -> None:
    (published.parent / "secret.txt").write_text("TOP-SECRET-CONTENT")
    (published / "models/s/v1/unlisted.gguf").write_bytes(b"not published")
    link = published / "models/s/v1/link.gguf"
    os.symlink(published.parent / "secret.txt", link)
    # Even when a (broken) registry row lists the escaping paths, they are refused.
    add_version(
        db,
        "evil",
        1,
        [
            {"name": "x", "path": p, "size": 1, "sha256": "0" * 64, "quantization": "F16"}
            for p in ("../secret.txt", "models/s/v1/link.gguf", "/etc/passwd")
        ],
        stable=False,
    )
    resp = await client.get(f"/api/artifacts/{path}")
    assert resp.status_code == 404, path
    assert b"TOP-SECRET-CONTENT" not in resp.content


async def test_unpublished_version_files_are_not_served(
    artifact_root: Path, client: httpx.AsyncClient, db: Database, settings: ServiceSettings
) -> None:
    root = artifact_root
    entry = write_artifact(root, "models/p/v1/model.Q8_0.gguf", b"pending")
    add_version(db, "p", 1, [entry], status="pending")
    assert (await client.get(f"/api/artifacts/{entry['path']}")).status_code == 404


@pytest.mark.parametrize(
    "header", ["items=0-5", "bytes", "bytes=", "bytes=abc", "bytes=5-2", "bytes=x-y"]
)
async def test_unknown_unit_or_malformed_range_is_ignored(
    client: httpx.AsyncClient, published: Path, header: str
) -> None:
    resp = await client.get(URL, headers={"Range": header})
    assert resp.status_code == 200  # RFC 9110 §14.2: ignore, send the whole file
    assert resp.content == DATA
