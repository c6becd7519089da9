"""Device registration under the configured enrollment policy, rate-limited per address."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from serving.auth import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    enrollment_signature,
    hash_token,
    new_credentials,
)
from serving.http import (
    ApiError,
    GuardedRoute,
    before_body,
    documented,
    read_limited_body,
    require_json,
    utf8_body,
)
from serving.routes.feedback import bearer
from serving.schemas import DeviceCredentials, DeviceOut, DeviceRegistration
from serving.state import service
from storage.repo.devices import create_device, remember_nonce

router = APIRouter(prefix="/api", route_class=GuardedRoute, tags=["devices"])

_REGISTRATION_MAX_BYTES = 4096
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


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
        await _check_signed(request, body, key.get_secret_value())


async def _check_signed(request: Request, body: bytes, key: str) -> None:
    """403 unless signed with the app's key; 401 when stale or replayed (the nonce is kept)."""
    state = service(request)
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    expected = enrollment_signature(key, body, timestamp, nonce)
    # Bytes, not str: compare_digest refuses non-ASCII text (a 500), and a header may hold
    # any byte (Starlette decodes it as latin-1, so this encoding is lossless).
    if not hmac.compare_digest(
        given.strip().lower().encode("latin-1", "replace"), expected.encode()
    ):
        raise ApiError(
            403,
            f"{SIGNATURE_HEADER} must be the hex HMAC-SHA256 of '<{TIMESTAMP_HEADER}>."
            f"<{NONCE_HEADER}>.<body>' under the app's enrollment key",
            reason="enrollment",
        )
    window = state.settings.enrollment_window_seconds
    now = datetime.now(UTC)
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now.timestamp() - int(timestamp)) > window:
        raise ApiError(
            401,
            f"{TIMESTAMP_HEADER} must be the Unix time of signing (seconds), within "
            f"{window:.0f} s of the server's clock; sign the registration again",
            reason="enrollment_stale",
        )
    if not _NONCE.fullmatch(nonce):
        raise ApiError(
            401, f"{NONCE_HEADER} must be 16-64 of A-Z a-z 0-9 _ -", reason="enrollment_nonce"
        )

    def remember() -> bool:
        with state.write_lock(), state.database.transaction(write=True) as session:
            keep_after = now - timedelta(seconds=2 * window)
            return remember_nonce(session=session, nonce=nonce, seen_at=now, keep_after=keep_after)

    if not await run_in_threadpool(remember):
        raise ApiError(
            401,
            "this signed registration was already used (its nonce is known); sign a new one",
            reason="enrollment_replay",
        )


@router.post(
    "/devices",
    status_code=201,
    response_model=DeviceCredentials,
    responses=documented(401, 403, 413, 415, 422, 429),
)
@before_body(_registration_guard)
async def register_device(
    request: Request,
    registration: DeviceRegistration,
    x_enrollment_signature: Annotated[
        str | None,
        Header(
            description="Hex HMAC-SHA256 of `<timestamp>.<nonce>.<raw body>` under the app's "
            "enrollment key (required when the server's enrollment policy is `key`; 403 "
            "when it does not match)."
        ),
    ] = None,
    x_enrollment_timestamp: Annotated[
        str | None,
        Header(
            pattern=r"^[0-9]{1,12}$",
            description="Unix time of signing in seconds; outside the server's window "
            "(DISTILLERY_ENROLLMENT_WINDOW_SECONDS, 300) the registration is 401.",
        ),
    ] = None,
    x_enrollment_nonce: Annotated[
        str | None,
        Header(
            pattern=r"^[A-Za-z0-9_-]{16,64}$",
            description="A fresh random value per registration; a nonce used before within "
            "the window is 401 (a replay).",
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


@router.get("/devices/me", response_model=DeviceOut, responses=documented(401, 403))
async def my_device(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> DeviceOut:
    """The token's device and its role (the web page shows its review view to reviewers)."""
    state = service(request)
    device_id, _, stored = await state.auth.credentials_of(request.headers.get("authorization"))
    role: Literal["user", "reviewer"] = "reviewer" if stored.role == "reviewer" else "user"
    return DeviceOut(device_id=device_id, role=role)
