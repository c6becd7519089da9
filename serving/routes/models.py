"""Version history of a student: every version, its channels and the promotion audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.http import ApiError, documented, json_response
from serving.schemas import VersionHistory, no_nul
from serving.state import service
from storage.registry.files import role_sizes
from storage.repo.catalog import channel_events, channel_pointers, version_history

router = APIRouter(prefix="/api/models", tags=["models"])


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


@router.get("/{student}/versions", response_model=VersionHistory, responses=documented(404, 422))
async def versions(
    request: Request,
    student: Annotated[str, AfterValidator(no_nul), Path(min_length=1, max_length=128)],
) -> Response:
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
                    "agent": row.agent,
                    "sizes": role_sizes(row.files or []),
                    "runtime": row.runtime or {},
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
