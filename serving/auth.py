"""Device bearer tokens: `<device_id>.<secret>`, of which only a sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from serving.http import ApiError
from storage.db import Database
from storage.repo.devices import get_token_hash

_CACHE_LIMIT = 50_000


def new_credentials() -> tuple[str, str]:
    """A fresh (device_id, token); the token names its device so a lookup is one row."""
    device_id = uuid.uuid4().hex
    return device_id, f"{device_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The stored form of a token: hex sha256 (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, message, reason="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


class Authenticator:
    """Checks `Authorization: Bearer` headers against stored hashes, caching verified hashes."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Tokens are never rotated in place, so a verified (device, hash) pair stays valid.
        self._hashes: dict[str, str] = {}

    def claimed_device(self, authorization: str | None) -> tuple[str, str]:
        """(device_id, token) named by the header, without touching the database; 401 if bad."""
        if not authorization:
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Authorization header must be 'Bearer <token>'")
        device_id, dot, secret = token.partition(".")
        if not dot or not device_id or not secret:
            raise _unauthorized("malformed bearer token")
        return device_id, token

    def cached(self, device_id: str, token: str) -> bool:
        """True when this token was verified before (no database needed)."""
        known = self._hashes.get(device_id)
        return known is not None and hmac.compare_digest(known, hash_token(token))

    def verify(self, device_id: str, token: str) -> None:
        """Check the token against the stored hash (blocking: call from a worker thread)."""
        with self.database.transaction() as session:
            stored = get_token_hash(session=session, device_id=device_id)
        if stored is None or not hmac.compare_digest(stored, hash_token(token)):
            raise _unauthorized("invalid bearer token")
        if len(self._hashes) >= _CACHE_LIMIT:
            self._hashes.clear()
        self._hashes[device_id] = stored
