"""The latest manifest phones poll: a documented route answering a cached, pre-rendered body."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import request_response as starlette_request_response

from serving.http import ApiError, documented
from serving.schemas import Manifest
from serving.state import ServiceState, service

LATEST_PATH = "/api/models/mobile/latest"
_DIGITS = re.compile(r"[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored, * matches anything."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


_BASE_URLS_MAX = 256  # a Host header is client input: the cache is bounded
_ANSWERS_MAX = 1024  # a 200 and a 304 for each body the catalog keeps rendered


def _host_header(request: Request) -> bytes:
    for name, value in request.scope["headers"]:
        if name == b"host":
            return bytes(value)
    return b""


def trusted_base_url(request: Request, state: ServiceState | None = None) -> str:
    """The origin download URLs are built from: the public base URL, else a trusted Host.

    Phones poll with the same Host every time; building Starlette's URL objects for it cost
    a quarter of a cached poll (bench/manifest.py), so trusted origins are remembered.
    """
    state = state or service(request)
    if state.settings.public_base_url:
        return state.settings.public_base_url
    scope = request.scope
    key = (scope["scheme"], _host_header(request), scope.get("server"), scope.get("root_path"))
    origin = state.base_urls.get(key)
    if origin is None:
        origin = _untrusted_or_origin(request, state.trusted_hosts)
        if len(state.base_urls) >= _BASE_URLS_MAX:
            state.base_urls.clear()
        state.base_urls[key] = origin
    return origin


def _untrusted_or_origin(request: Request, trusted: frozenset[str]) -> str:
    """The request's origin when its host is trusted; 400 otherwise."""
    host = request.url.hostname or ""
    if host.lower() not in trusted:
        raise ApiError(
            400,
            f"Host {host[:80]!r} is not trusted for download URLs; set DISTILLERY_PUBLIC_BASE_URL"
            " or add it to DISTILLERY_ALLOWED_HOSTS",
            reason="untrusted_host",
        )
    return str(request.base_url).rstrip("/")


def _query_error(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        f"{field}: {message}",
        reason="invalid",
        errors=[{"field": field, "message": message, "type": "value_error"}],
    )


def _query(request: Request) -> dict[str, str]:
    """The query parameters, last value winning as in Starlette's QueryParams; parsed once."""
    raw: bytes = request.scope["query_string"]
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}


def _text_param(query: dict[str, str], name: str, max_chars: int) -> str | None:
    value = query.get(name)
    if value is not None and (len(value) > max_chars or "\x00" in value):
        raise _query_error(name, f"at most {max_chars} characters, no NUL")
    return value


async def latest(request: Request) -> Response:
    """Per student, the version its stable channel points to, with download URLs and hashes.

    Strong ETag over the body; a matching If-None-Match answers 304. The body is rendered
    once per catalog state and parameters, then sent as stored bytes.
    """
    state = service(request)
    query = _query(request)
    raw_version = query.get("current_version")
    version: int | None = None
    if raw_version is not None:
        if not _DIGITS.fullmatch(raw_version):
            raise _query_error("current_version", "must be a version number in decimal digits")
        version = int(raw_version)
    student = _text_param(query, "student", 128)
    device_id = _text_param(query, "device_id", 64)
    base_sha256 = query.get("base_sha256")
    if base_sha256 is not None:
        if not _SHA256.fullmatch(base_sha256):
            raise _query_error("base_sha256", "must be a sha256 hex digest (64 hex digits)")
        base_sha256 = base_sha256.lower()
    await state.catalog.ensure_fresh()
    origin = trusted_base_url(request, state)
    canary = state.catalog.cohorts(device_id)
    body, etag = state.catalog.manifest(origin, student, version, base_sha256, canary)
    not_modified = etag_matches(request.headers.get("if-none-match"), etag)
    return _answer(state, body, etag, not_modified)


def _answer(state: ServiceState, body: bytes, etag: str, not_modified: bool) -> Response:
    """The 200 or 304 answer for a rendered body, built once per ETag and reused.

    A Starlette Response only sends its stored status, headers and body, so one instance
    serves every poll of the same state; building it cost a tenth of a cached poll.
    """
    key = (etag, not_modified)
    answer = state.manifest_answers.get(key)
    if answer is None:
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if not_modified:
            answer = Response(status_code=304, headers=headers)
        else:
            answer = Response(body, media_type="application/json", headers=headers)
        if len(state.manifest_answers) >= _ANSWERS_MAX:
            state.manifest_answers.clear()
        state.manifest_answers[key] = answer
    return answer


class PreRenderedRoute(APIRoute):
    """A documented APIRoute whose endpoint reads the Request and returns its own Response.

    Phones poll this route: FastAPI's parameter solving would cost more than the whole
    cached answer (bench/manifest.py), so the endpoint parses its four query parameters
    itself, by the rules the document states.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Starlette's request/response wrapper: no dependency exit stacks to open per poll.
        self.app = starlette_request_response(endpoint)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself."""
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def route() -> APIRoute:
    """The polled manifest as a route the app is built with, ahead of every other route.

    Routing tries routes in order, and the docs routes FastAPI adds come first otherwise;
    being first saves a sixth of a cached poll's time (bench/manifest.py).
    """
    return PreRenderedRoute(
        LATEST_PATH,
        latest,
        methods=["GET"],
        name="latest_manifest",
        tags=["models"],
        response_model=Manifest,
        # The app's operation ids are the endpoint names (create_app); this route is built
        # before the app, so it says so itself.
        generate_unique_id_function=lambda r: r.name,
        responses={
            200: {"headers": {"ETag": {"description": "strong", "schema": {"type": "string"}}}},
            **documented(304, 400, 422),
        },
        openapi_extra={
            "parameters": [
                _param(
                    "current_version",
                    {"type": "integer", "minimum": 0, "maximum": 999_999_999},
                    "The version the phone runs (decimal digits); adds `update_available`.",
                ),
                _param("student", {"type": "string", "maxLength": 128}, "Only this student."),
                _param(
                    "device_id",
                    {"type": "string", "maxLength": 64},
                    "The phone's device id: a device in a staged rollout's cohort gets that "
                    "version (`channel: canary`), the same one on every poll.",
                ),
                _param(
                    "base_sha256",
                    {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                    "sha256 of the base GGUF the phone holds; adds `fetch`: only the adapter "
                    "when it is this version's base, else the merged file.",
                ),
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "An ETag from an earlier answer: 304 if still current.",
                },
            ]
        },
    )
