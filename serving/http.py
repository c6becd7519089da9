"""HTTP plumbing: API errors, orjson responses and a size-bounded body reader."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class ApiError(Exception):
    """An error answered as `{"detail": message, ...extra}` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or str(status)
        self.headers = headers
        self.extra = extra


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (UUIDs and datetimes included)."""
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(exc: ApiError) -> Response:
    """The JSON body of an ApiError."""
    return json_response({"detail": exc.message, **exc.extra}, exc.status, exc.headers)


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 once it is (or declares to be) larger than `limit`.

    Content-Length is checked before reading; chunked bodies are counted while streaming,
    so an oversize upload is cut off without being buffered whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "Content-Length is not an integer", reason="bad_length") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, f"request body exceeds {limit} bytes", reason="body_too_large", max_bytes=limit
    )
