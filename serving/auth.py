"""Device bearer tokens (`<device_id>.<secret>`, sha256 stored), checked on every request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from starlette.concurrency import run_in_threadpool

from serving.http import ApiError
from storage.db import Database
from storage.repo.devices import Credentials, get_credentials


def new_credentials() -> tuple[str, str]:
    """A fresh (device_id, token); the token names its device so a lookup is one row."""
    device_id = uuid.uuid4().hex
    return device_id, f"{device_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The stored form of a token: hex sha256 (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


SIGNATURE_HEADER = "X-Enrollment-Signature"
TIMESTAMP_HEADER = "X-Enrollment-Timestamp"
NONCE_HEADER = "X-Enrollment-Nonce"


def enrollment_signature(key: str, body: bytes, timestamp: str, nonce: str) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<nonce>.<body>` under the app's enrollment key.

    The timestamp and the nonce are signed with the body, so a captured registration can be
    replayed neither later (the timestamp leaves the window) nor within the window (the
    service remembers the nonce).
    """
    message = f"{timestamp}.{nonce}.".encode() + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def enrollment_headers(key: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers an app sends with a registration under the `key` policy."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_urlsafe(24)
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: enrollment_signature(key, body, timestamp, nonce),
    }


def unauthorized(message: str) -> ApiError:
    """401 with the WWW-Authenticate challenge RFC 6750 asks for."""
    return ApiError(
        401, message, reason="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


def check_credentials(stored: Credentials | None, token_hash: str) -> None:
    """Raise the answer for a token that does not grant uploads: 401 or 403."""
    if stored is None or not hmac.compare_digest(stored.token_hash, token_hash):
        raise unauthorized("invalid bearer token")
    if stored.status == "revoked":
        raise unauthorized("this device was revoked; register again to upload")
    if stored.status != "active":
        raise ApiError(403, "this device awaits approval by an administrator", reason="pending")


class Authenticator:
    """The one device check of every device-authenticated route (uploads, chat, web).

    The device's row is read on every request, one primary-key lookup that returns the
    token hash and the status together, so a revocation, a pending approval or a deletion
    applies to the very next request on every worker. There is deliberately no per-process
    cache: one let a revoked device chat (and stream tokens) for its TTL, on each worker.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def claimed_device(self, authorization: str | None) -> tuple[str, str]:
        """(device_id, token) named by the header, without touching the database; 401 if bad."""
        if not authorization:
            raise unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Authorization header must be 'Bearer <token>'")
        device_id, dot, secret = token.partition(".")
        if not dot or not device_id or not secret or len(device_id) > 64:
            raise unauthorized("malformed bearer token")
        return device_id, token

    def verify(self, device_id: str, token_hash: str) -> Credentials:
        """Check the token and the device's status in the database (blocking: a worker thread)."""
        with self.database.transaction() as session:
            stored = get_credentials(session=session, device_id=device_id)
        check_credentials(stored, token_hash)
        assert stored is not None  # check_credentials refused an unknown device
        return stored

    async def credentials_of(self, authorization: str | None) -> tuple[str, str, Credentials]:
        """(device_id, token_hash, stored credentials) of an active device, else 401 or 403."""
        device_id, token = self.claimed_device(authorization)
        token_hash = hash_token(token)
        stored = await run_in_threadpool(self.verify, device_id, token_hash)
        return device_id, token_hash, stored

    async def device_of(
        self, authorization: str | None, *, role: str | None = None
    ) -> tuple[str, str]:
        """(device_id, token_hash) of an active device, else 401 (bad, revoked) or 403 (pending).

        With `role`, also 403 unless the device has that role. The role is read with the
        token, from the same row, so a grant or a revocation applies to the next request.
        """
        device_id, token_hash, stored = await self.credentials_of(authorization)
        if role is not None and stored.role != role:
            raise ApiError(
                403,
                f"this device is not a {role}; an operator grants the role with "
                f"`distillery devices grant {role} {device_id}`",
                reason="role",
            )
        return device_id, token_hash
