"""The latest manifest phones poll, answered ahead of the router from the catalog cache.

Phones poll this endpoint, so its cached answer is sent with raw ASGI messages: FastAPI's
routing and parameter solving alone cost more than the whole answer (bench/manifest.py).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http import ApiError, error_response
from serving.state import ServiceState

LATEST_PATH = "/api/models/mobile/latest"


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored, * matches anything."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _request_base_url(scope: Scope, host: bytes | None) -> str:
    if host is None:
        server_host, port = scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{port}".encode()
    return f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}{scope.get('root_path', '')}"


async def send_latest(scope: Scope, receive: Receive, send: Send) -> None:
    """Per student, the version its stable channel points to, with download URLs and hashes.

    Query: `current_version` (the version the phone runs) adds `update_available`;
    `student` narrows the list to one student; `device_id` is accepted for staged rollouts.
    Strong ETag over the body; a matching If-None-Match answers 304.
    """
    state: ServiceState = scope["app"].state.service
    query = scope.get("query_string", b"")
    params = dict(parse_qsl(query.decode("latin-1"))) if query else {}
    host = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    version: int | None = None
    if "current_version" in params:
        try:
            version = int(params["current_version"])
        except ValueError:
            error = ApiError(
                422, "current_version: must be an integer version number", reason="invalid"
            )
            await error_response(error)(scope, receive, send)
            return
    await state.catalog.ensure_fresh()
    base_url = state.settings.public_base_url or _request_base_url(scope, host)
    body, etag = state.catalog.manifest(base_url.rstrip("/"), params.get("student"), version)
    headers = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    if etag_matches(if_none_match, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _LatestEndpoint:
    """The same answer as a routed ASGI endpoint (listed among the app's routes)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_latest(scope, receive, send)


LATEST_ROUTE = Route(LATEST_PATH, _LatestEndpoint(), methods=["GET"])


class LatestFastPath:
    """ASGI middleware that answers GET of the latest manifest before any routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == scope.get("root_path", "") + LATEST_PATH
        ):
            scope["route"] = LATEST_ROUTE  # the metrics label, as routing would set it
            await send_latest(scope, receive, send)
            return
        await self.app(scope, receive, send)
