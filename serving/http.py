"""HTTP plumbing: API errors, orjson responses, bounded bodies and routes guarded before parsing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from serving.schemas import ErrorBody

Guard = Callable[[Request], Awaitable[None]]


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


_DESCRIPTIONS = {
    304: "Not modified: the If-None-Match ETag is current (empty body).",
    400: "Bad request (e.g. an untrusted Host header or a bad Content-Length).",
    401: "Missing, malformed, invalid or revoked bearer token.",
    403: "Authenticated but not allowed (another device's id, pending approval, bad signature, "
    "a role the device lacks).",
    404: "Not found.",
    409: "Conflicts with the stored state (e.g. the answer was corrected in the meantime).",
    413: "Request body larger than the configured limit.",
    415: "Content-Type is not application/json.",
    416: "Range not satisfiable.",
    422: "Validation failed; `detail` names the first field, `errors` lists all.",
    429: "Rate limit or daily quota exceeded; retry after `Retry-After` seconds.",
    503: "Database unavailable.",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes (ErrorBody, except 304's empty body)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"description": _DESCRIPTIONS[code]}
        if code not in (304, 416):
            entry["model"] = ErrorBody
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        out[code] = entry
    return out


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 once it is (or declares to be) larger than `limit`.

    Content-Length is checked before reading; chunked bodies are counted while streaming,
    so an oversize upload is cut off without being buffered whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "Content-Length is not an integer", reason="bad_length")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def utf8_body(body: bytes) -> bytes:
    """The body, if it is UTF-8 (RFC 8259): else a 422 instead of FastAPI's bare 400."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"JSON body is not valid UTF-8 (byte {exc.start})"
        raise ApiError(
            422,
            f"body: {message}",
            reason="invalid",
            errors=[{"field": "body", "message": message, "type": "json_invalid"}],
        ) from None
    return body


def parse_json_early(request: Request, body: bytes) -> None:
    """Parse the body with orjson (a third of json.loads' time on an upload) for FastAPI.

    Starlette's `Request.json()` returns `_json` when it is set, so FastAPI's typed body
    reads this result. A body orjson refuses is left to FastAPI's own parse, which either
    accepts it (json.loads also takes NaN, big integers, lone surrogates) or answers its
    usual 422: the accepted inputs and the error shape are unchanged.
    """
    try:
        request._json = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass


def require_json(request: Request) -> None:
    """415 unless the Content-Type is application/json (or a +json type), any parameters."""
    value = request.headers.get("content-type", "")
    media = value.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise ApiError(
            415,
            f"Content-Type must be application/json (got {value[:60] or 'none'!r})",
            reason="unsupported_media_type",
        )


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, f"request body exceeds {limit} bytes", reason="body_too_large", max_bytes=limit
    )


def before_body(guard: Guard) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint: `guard` runs before FastAPI reads and parses the body.

    FastAPI reads the whole body before any dependency runs; the guard (auth, rate limit,
    content type, size) lets a refused request cost nothing and never buffer an oversize body.
    """

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.before_body = guard  # type: ignore[attr-defined]
        return endpoint

    return mark


class GuardedRoute(APIRoute):
    """An APIRoute that runs its endpoint's `before_body` guard ahead of body parsing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, preceded by the guard when the endpoint declares one."""
        handler = super().get_route_handler()
        guard: Guard | None = getattr(self.endpoint, "before_body", None)
        if guard is None:
            return handler

        async def guarded(request: Request) -> Response:
            await guard(request)
            return await handler(request)

        return guarded
