"""Device bearer tokens (`<device_id>.<secret>`, sha256 stored), enrollment and a bounded cache."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from serving.http import ApiError
from storage.db import Database
from storage.repo.devices import Credentials, get_credentials

_CACHE_LIMIT = 50_000


def new_credentials() -> tuple[str, str]:
    """A fresh (device_id, token); the token names its device so a lookup is one row."""
    device_id = uuid.uuid4().hex
    return device_id, f"{device_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The stored form of a token: hex sha256 (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def enrollment_signature(key: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of a registration body under the app's enrollment key."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


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
    """Checks `Authorization: Bearer` headers against stored hashes.

    A verified token is cached for `ttl` seconds only, so a revocation is seen by every worker
    within that time even for reads; uploads re-check the device inside their own write
    transaction (storage.repo.devices.get_credentials), so a revoked device never stores.
    """

    def __init__(self, database: Database, ttl: float) -> None:
        self.database = database
        self.ttl = ttl
        self._verified: dict[str, tuple[str, float]] = {}

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

    def cached(self, device_id: str, token_hash: str) -> bool:
        """True when this token was verified less than `ttl` seconds ago."""
        hit = self._verified.get(device_id)
        if hit is None or time.monotonic() - hit[1] >= self.ttl:
            return False
        return hmac.compare_digest(hit[0], token_hash)

    def verify(self, device_id: str, token_hash: str) -> None:
        """Check the token against the database (blocking: call from a worker thread)."""
        with self.database.transaction() as session:
            stored = get_credentials(session=session, device_id=device_id)
        try:
            check_credentials(stored, token_hash)
        except ApiError:
            self.forget(device_id)
            raise
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[device_id] = (token_hash, time.monotonic())

    def forget(self, device_id: str) -> None:
        """Drop a device from the cache (its token was just refused)."""
        self._verified.pop(device_id, None)
