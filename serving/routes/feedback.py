"""Device registration and feedback upload: authenticated, bounded, idempotent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.auth import hash_token, new_credentials
from serving.http import ApiError, json_response, read_limited_body
from serving.schemas import DeviceRegistration, validation_errors
from serving.state import ServiceState, service
from storage.repo.devices import create_device, touch_device
from storage.repo.feedback import BatchResult, insert_feedback_batch

router = APIRouter(prefix="/api")

_REGISTRATION_MAX_BYTES = 4096


def _invalid(exc: ValidationError) -> ApiError:
    errors = validation_errors(exc)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ApiError(
        422, f"{first['field']}: {first['message']}{more}", reason="invalid", errors=errors
    )


@router.post("/devices", status_code=201)
async def register_device(request: Request) -> Response:
    """Register a device; its bearer token is in this answer only (just a hash is kept)."""
    state = service(request)
    body = await read_limited_body(request, _REGISTRATION_MAX_BYTES)
    try:
        registration = DeviceRegistration.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    device_id, token = new_credentials()

    def store() -> None:
        with state.write_lock(), state.database.transaction(write=True) as session:
            create_device(
                session=session,
                device_id=device_id,
                token_hash=hash_token(token),
                platform=registration.platform,
                app_version=registration.app_version,
            )

    await run_in_threadpool(store)
    return json_response(
        {"device_id": device_id, "token": token, "token_type": "bearer"}, status=201
    )


@router.post("/training/feedback")
async def upload_feedback(request: Request) -> Response:
    """Store a batch of interactions; ids seen before are counted as duplicates, not stored."""
    state = service(request)
    try:
        result = await _upload(state, request)
    except ApiError as exc:
        state.metrics.rejects.labels(exc.reason).inc()
        raise
    state.metrics.uploads.inc()
    state.metrics.accepted.inc(result.accepted)
    state.metrics.duplicates.inc(result.duplicates)
    return json_response(
        {
            "batch_id": result.batch_id,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "received": result.accepted + result.duplicates,
        }
    )


async def _upload(state: ServiceState, request: Request) -> BatchResult:
    # Authenticate before reading the body, so anonymous uploads cost nothing.
    device_id, token = state.auth.claimed_device(request.headers.get("authorization"))
    if not state.auth.cached(device_id, token):
        await run_in_threadpool(state.auth.verify, device_id, token)
    body = await read_limited_body(request, state.settings.max_body_bytes)
    try:
        upload: Any = state.feedback_model.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if upload.device_id != device_id:
        raise ApiError(
            403, "device_id does not match the device of the bearer token", reason="forbidden"
        )
    rows = [
        {
            "id": i.id,
            "model_name": i.model_name,
            "model_version": i.model_version,
            "prompt": i.prompt,
            "response": i.response,
            "correction": i.correction,
            "rating": i.rating,
            "latency_ms": i.latency_ms,
            "category": i.category,
            "client_created_at": i.created_at,
        }
        for i in upload.interactions
    ]

    def store() -> BatchResult:
        with state.write_lock(), state.database.transaction(write=True) as session:
            result = insert_feedback_batch(
                session=session,
                device_id=device_id,
                interactions=rows,
                client_timestamp=upload.timestamp,
            )
            if state.due_for_touch(device_id):
                touch_device(session=session, device_id=device_id)
        return result

    return await run_in_threadpool(store)
