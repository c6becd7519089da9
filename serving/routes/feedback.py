"""Feedback upload: authenticated before the body is read, bounded, idempotent, group-committed."""

# No `from __future__ import annotations`: FastAPI must see the built body model itself.

from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from serving.http import (
    ApiError,
    GuardedRoute,
    before_body,
    documented,
    parse_json_early,
    read_limited_body,
    require_json,
    utf8_body,
)
from serving.schemas import FeedbackResult
from serving.state import service
from serving.writer import Upload
from storage.repo.feedback import FeedbackRow

FEEDBACK_PATH = "/api/training/feedback"

# Declares the bearer scheme in OpenAPI; the guard below does the checking, before the body.
bearer = HTTPBearer(auto_error=False, description="`<device_id>.<secret>` from POST /api/devices")


async def _upload_guard(request: Request) -> None:
    """401/403 before the body is read, then the device's rate limit, 415 and 413."""
    state = service(request)
    try:
        device_id, token_hash = await state.auth.device_of(request.headers.get("authorization"))
        state.limits.hit(state.limits.upload, "device", device_id)
        require_json(request)
        body = await read_limited_body(request, state.settings.max_body_bytes)
        request._body = utf8_body(body)
        parse_json_early(request, body)
    except ApiError as exc:
        state.metrics.rejects.labels(exc.reason).inc()
        raise
    request.state.device = (device_id, token_hash)


def build_router(upload_model: type[BaseModel]) -> APIRouter:
    """The upload route for a body model built from the settings' limits."""
    router = APIRouter(prefix="/api", route_class=GuardedRoute, tags=["feedback"])

    @router.post(
        "/training/feedback",
        response_model=FeedbackResult,
        responses=documented(401, 403, 413, 415, 422, 429),
    )
    @before_body(_upload_guard)
    async def upload_feedback(
        request: Request,
        upload: upload_model,  # type: ignore[valid-type]
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> FeedbackResult:
        """Store a batch of interactions from the token's device.

        Ids stored before count as duplicates; one re-sent with a later `updated_at` replaces
        its rating and correction (`updated`). Answered once the batch is committed.
        """
        state = service(request)
        device_id, token_hash = request.state.device
        body: Any = upload
        try:
            if body.device_id != device_id:
                raise ApiError(
                    403,
                    "device_id does not match the device of the bearer token",
                    reason="forbidden",
                )
            rows = [
                FeedbackRow(
                    id=i.id,
                    model_name=i.model_name,
                    model_version=i.model_version,
                    prompt=i.prompt,
                    response=i.response,
                    client_created_at=i.created_at,
                    correction=i.correction,
                    rating=i.rating,
                    latency_ms=i.latency_ms,
                    category=i.category,
                    agent=i.agent,
                    client_updated_at=i.updated_at,
                    consent=i.consent or state.settings.default_consent,
                )
                for i in body.interactions
            ]
            job = Upload(
                device_id, token_hash, rows, body.timestamp, state.due_for_touch(device_id)
            )
            result = await state.writer.store(job)
        except ApiError as exc:
            state.metrics.rejects.labels(exc.reason).inc()
            raise
        state.metrics.uploads.inc()
        state.metrics.accepted.inc(result.accepted)
        state.metrics.duplicates.inc(result.duplicates)
        return FeedbackResult(
            batch_id=result.batch_id,
            accepted=result.accepted,
            updated=result.updated,
            duplicates=result.duplicates,
            not_stored=result.not_stored,
            received=result.accepted + result.updated + result.duplicates + result.not_stored,
        )

    return router
