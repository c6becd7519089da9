"""Artifact downloads with HTTP Range, limited to files of published versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import (
    FileResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    RedirectResponse,
    Response,
)

from serving.http import ApiError, documented
from serving.state import service
from storage.artifact_store import fetch_published
from storage.artifacts import resolve_artifact

router = APIRouter(prefix="/api/artifacts", tags=["artifacts"])


class RangeFileResponse(FileResponse):
    """Starlette's FileResponse, but a Range it cannot use is ignored as RFC 9110 §14.2 says.

    Starlette answers 400 to an unknown unit or a malformed range set; the RFC says to ignore
    both and send the whole file (200). Unsatisfiable byte ranges still answer 416.
    """

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        units, _, spec = http_range.partition("=")
        if units.strip().lower() != "bytes" or not spec.strip():
            return []  # unknown unit or no range set: ignored
        try:
            return super()._parse_range_header(http_range, file_size)
        except RangeNotSatisfiable:
            raise
        except MalformedRangeHeader:
            return []


_BINARY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole file.", **_BINARY},
    206: {"description": "The requested byte range(s).", **_BINARY},
    307: {"description": "A presigned URL of the shared artifact store (artifact_delivery)."},
    **documented(404, 416, 422),
}


@router.head("/{path:path}", response_class=Response, responses=_RESPONSES, name="head_artifact")
@router.get("/{path:path}", response_class=Response, responses=_RESPONSES, name="download_artifact")
async def download(request: Request, path: str) -> Response:
    """A registry file; Range requests answer 206 (or 416), so phones can resume downloads."""
    state = service(request)
    await state.catalog.ensure_fresh()
    # Only files a published version lists are served, and never anything outside the root.
    published = path in state.catalog.paths
    if published and state.store.shared and state.settings.artifact_delivery == "redirect":
        seconds = state.settings.artifact_url_seconds
        signed = await run_in_threadpool(state.store.signed_url, path, seconds)
        if signed is not None:  # the store answers Range itself; the manifest's sha256 holds
            return RedirectResponse(
                signed,
                status_code=307,
                headers={"Cache-Control": f"private, max-age={seconds // 2}"},
            )
    resolved = resolve_artifact(state.artifact_root, path) if published else None
    if resolved is None and published and state.store.shared:
        # Published from another host: copied once from the shared store into this root,
        # then served as a local file (Range, ETag and the manifest's sha256 unchanged).
        await run_in_threadpool(fetch_published, state.store, state.artifact_root, path)
        resolved = resolve_artifact(state.artifact_root, path)
    if resolved is None:
        raise ApiError(404, f"no published artifact at {path!r}", reason="not_found")
    # Starlette's FileResponse implements Range/If-Range, 206/416, Accept-Ranges and ETag.
    return RangeFileResponse(
        resolved,
        media_type="application/octet-stream",
        headers={"Cache-Control": "public, max-age=86400"},
    )
