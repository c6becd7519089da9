"""Device registration under the configured enrollment policy, rate-limited per address."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from serving.auth import enrollment_signature, hash_token, new_credentials
from serving.http import (
    ApiError,
    GuardedRoute,
    before_body,
    documented,
    read_limited_body,
    require_json,
    utf8_body,
)
from serving.schemas import DeviceCredentials, DeviceRegistration
from serving.state import service
from storage.repo.devices import create_device

router = APIRouter(prefix="/api", route_class=GuardedRoute, tags=["devices"])

_REGISTRATION_MAX_BYTES = 4096
SIGNATURE_HEADER = "X-Enrollment-Signature"


async def _registration_guard(request: Request) -> None:
    """Rate limit per client address, JSON only, bounded body, enrollment signature."""
    state = service(request)
    address = request.client.host if request.client else "unknown"
    state.limits.hit(state.limits.registration, "address", address)
    require_json(request)
    body = await read_limited_body(request, _REGISTRATION_MAX_BYTES)
    request._body = utf8_body(body)  # FastAPI parses these bytes; never read twice
    key = state.settings.enrollment_key
    if state.settings.enrollment == "key" and key is not None:
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = enrollment_signature(key.get_secret_value(), body)
        # Bytes, not str: compare_digest refuses non-ASCII text (a 500), and a header may
        # hold any byte (Starlette decodes it as latin-1, so this encoding is lossless).
        given_bytes = given.strip().lower().encode("latin-1", "replace")
        if not hmac.compare_digest(given_bytes, expected.encode()):
            raise ApiError(
                403,
                f"{SIGNATURE_HEADER} must be the hex HMAC-SHA256 of the body under the app's"
                " enrollment key",
                reason="enrollment",
            )


@router.post(
    "/devices",
    status_code=201,
    response_model=DeviceCredentials,
    responses=documented(403, 413, 415, 422, 429),
)
@before_body(_registration_guard)
async def register_device(
    request: Request,
    registration: DeviceRegistration,
    x_enrollment_signature: Annotated[
        str | None,
        Header(
            description="Hex HMAC-SHA256 of the raw body under the app's enrollment key "
            "(required when the server's enrollment policy is `key`)."
        ),
    ] = None,
) -> DeviceCredentials:
    """Register a device; its bearer token is in this answer only (just a hash is kept).

    Under the `approval` policy the device starts `pending` and may upload once approved.
    """
    state = service(request)
    device_id, token = new_credentials()
    status: Literal["active", "pending"] = (
        "pending" if state.settings.enrollment == "approval" else "active"
    )

    def store() -> None:
        with state.write_lock(), state.database.transaction(write=True) as session:
            create_device(
                session=session,
                device_id=device_id,
                token_hash=hash_token(token),
                platform=registration.platform,
                app_version=registration.app_version,
                status=status,
            )

    await run_in_threadpool(store)
    return DeviceCredentials(device_id=device_id, token=token, status=status)
