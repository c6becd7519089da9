"""Artifact downloads with HTTP Range, limited to files of published versions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from serving.http import ApiError
from serving.state import service
from storage.artifacts import resolve_artifact

router = APIRouter(prefix="/api/artifacts")


@router.api_route("/{path:path}", methods=["GET", "HEAD"])
async def download(request: Request, path: str) -> Response:
    """A registry file; Range requests answer 206 (or 416), so phones can resume downloads."""
    state = service(request)
    await state.catalog.ensure_fresh()
    # Only files a published version lists are served, and never anything outside the root.
    resolved = resolve_artifact(state.artifact_root, path) if path in state.catalog.paths else None
    if resolved is None:
        raise ApiError(404, f"no published artifact at {path!r}", reason="not_found")
    # Starlette's FileResponse implements Range/If-Range, 206/416, Accept-Ranges and ETag.
    return FileResponse(
        resolved,
        media_type="application/octet-stream",
        headers={"Cache-Control": "public, max-age=86400"},
    )
