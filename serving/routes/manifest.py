"""The latest manifest phones poll: a documented route answering a cached, pre-rendered body."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import request_response as starlette_request_response

from serving.http import ApiError, documented
from serving.schemas import Manifest
from serving.state import service

LATEST_PATH = "/api/models/mobile/latest"
_DIGITS = re.compile(r"[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

router = APIRouter(tags=["models"])


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored, * matches anything."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def trusted_base_url(request: Request) -> str:
    """The origin download URLs are built from: the public base URL, else a trusted Host."""
    state = service(request)
    if state.settings.public_base_url:
        return state.settings.public_base_url
    host = request.url.hostname or ""
    if host.lower() not in state.trusted_hosts:
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


def _text_param(request: Request, name: str, max_chars: int) -> str | None:
    value = request.query_params.get(name)
    if value is not None and (len(value) > max_chars or "\x00" in value):
        raise _query_error(name, f"at most {max_chars} characters, no NUL")
    return value


async def latest(request: Request) -> Response:
    """Per student, the version its stable channel points to, with download URLs and hashes.

    Strong ETag over the body; a matching If-None-Match answers 304. The body is rendered
    once per catalog state and parameters, then sent as stored bytes.
    """
    state = service(request)
    raw_version = request.query_params.get("current_version")
    version: int | None = None
    if raw_version is not None:
        if not _DIGITS.fullmatch(raw_version):
            raise _query_error("current_version", "must be a version number in decimal digits")
        version = int(raw_version)
    student = _text_param(request, "student", 128)
    _text_param(request, "device_id", 64)
    base_sha256 = request.query_params.get("base_sha256")
    if base_sha256 is not None:
        if not _SHA256.fullmatch(base_sha256):
            raise _query_error("base_sha256", "must be a sha256 hex digest (64 hex digits)")
        base_sha256 = base_sha256.lower()
    await state.catalog.ensure_fresh()
    body, etag = state.catalog.manifest(trusted_base_url(request), student, version, base_sha256)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


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


router.add_api_route(
    LATEST_PATH,
    latest,
    methods=["GET"],
    name="latest_manifest",
    response_model=Manifest,
    route_class_override=PreRenderedRoute,
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
            _param("device_id", {"type": "string", "maxLength": 64}, "For staged rollouts."),
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
