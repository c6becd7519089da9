"""What phones download: the latest stable manifest, and each student's version history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http import ApiError, error_response, json_response
from serving.state import service
from storage.repo.catalog import channel_events, channel_pointers, version_history

router = APIRouter(prefix="/api/models")


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored, * matches anything."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


async def latest_mobile(request: Request) -> Response:
    """Per student, the version its stable channel points to, with download URLs and hashes.

    `current_version` (the version the phone runs) adds `update_available`; `student`
    narrows the list to one student. `device_id` is accepted for future staged rollouts.
    Phones poll this: LatestFastPath answers it ahead of the router, whose matching and
    parameter solving cost more than the whole cached answer (bench/manifest.py).
    """
    state = service(request)
    query = request.query_params
    current_version, student = query.get("current_version"), query.get("student")
    version: int | None = None
    if current_version is not None:
        try:
            version = int(current_version)
        except ValueError:
            raise ApiError(
                422, "current_version: must be an integer version number", reason="invalid"
            ) from None
    await state.catalog.ensure_fresh()
    base_url = state.settings.public_base_url or str(request.base_url)
    body, etag = state.catalog.manifest(base_url.rstrip("/"), student, version)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type="application/json")


LATEST_PATH = f"{router.prefix}/mobile/latest"
router.add_route(LATEST_PATH, latest_mobile, methods=["GET"])
_LATEST_ROUTE = Route(LATEST_PATH, latest_mobile, methods=["GET"])  # the metrics label


class LatestFastPath:
    """ASGI middleware answering GET of the latest manifest without routing (same handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] != scope.get("root_path", "") + LATEST_PATH
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = _LATEST_ROUTE
        try:
            response = await latest_mobile(Request(scope, receive))
        except ApiError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


def _metrics_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics flattened one level deep: {"test": {"bleu": 3}} -> {"test.bleu": 3}."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, int | float) and not isinstance(inner, bool):
                    out[f"{key}.{sub}"] = inner
    return out


@router.get("/{student}/versions")
async def versions(request: Request, student: str) -> Response:
    """All versions of a student (newest first), the channels, and the promotion audit trail."""
    state = service(request)

    def load() -> dict[str, Any]:
        with state.database.transaction() as session:
            rows = version_history(session=session, student=student)
            pointers = channel_pointers(session=session, student=student)
            events = channel_events(session=session, student=student)
        number = {row.id: row.version for row in rows}
        return {
            "student": student,
            "channels": {name: number.get(vid) for name, vid in pointers.items()},
            "versions": [
                {
                    "version": row.version,
                    "status": row.status,
                    "base_model": row.base_model,
                    "base_revision": row.base_revision,
                    "teacher": row.teacher,
                    "strategy": row.strategy,
                    "snapshot_id": row.snapshot_id,
                    "training_run_id": row.training_run_id,
                    "metrics": _metrics_summary(row.metrics or {}),
                    "gate": row.gate,
                    "channels": sorted(n for n, vid in pointers.items() if vid == row.id),
                    "files": len(row.files or []),
                    "hub_revision": row.hub_revision,
                    "created_at": row.created_at,
                    "published_at": row.published_at,
                }
                for row in rows
            ],
            "events": [
                {
                    "id": e.id,
                    "channel": e.channel,
                    "action": e.action,
                    "from_version": number.get(e.from_version_id) if e.from_version_id else None,
                    "to_version": number.get(e.to_version_id),
                    "reason": e.reason,
                    "actor": e.actor,
                    "created_at": e.created_at,
                }
                for e in events
            ],
        }

    history = await run_in_threadpool(load)
    if not history["versions"] and not history["events"]:
        raise ApiError(404, f"unknown student {student!r}", reason="not_found")
    return json_response(history)
