"""Liveness and schema state: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.http import documented, json_response
from serving.schemas import Health
from serving.state import service

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health, responses=documented(503))
async def health(request: Request) -> Response:
    """Database reachability, schema revision against the code's head, and app version."""
    state = service(request)
    try:
        revision = await run_in_threadpool(state.database.current_revision)
    except Exception as exc:  # any driver error means the database is not usable
        return json_response(
            {
                "status": "unavailable",
                "database": "unreachable",
                "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                "version": state.version,
            },
            status=503,
        )
    current = revision is not None and revision == state.schema_head
    return json_response(
        {
            "status": "ok" if current else "degraded",
            "database": "ok",
            "schema_revision": revision,
            "schema_head": state.schema_head,
            "schema_current": current,
            "version": state.version,
        }
    )
