"""The FastAPI app factory: routes, error shapes, metrics, offline docs; storage is its store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.responses import Response

from serving.chat import routes as chat
from serving.http import ApiError, error_response, json_response
from serving.metrics import TimingMiddleware
from serving.routes import (
    artifacts,
    devices,
    feedback,
    health,
    manifest,
    models,
    privacy,
    review,
    web,
)
from serving.schemas import feedback_model, field_path
from serving.settings import ServiceSettings
from serving.state import ServiceState, app_version
from storage.artifact_store import ArtifactStore
from storage.config import Settings, StorageSettings
from storage.db import Database, get_database

DOCS_PATH = "/api/docs"
log = logging.getLogger("distillery.serving")


def create_app(
    settings: ServiceSettings | None = None,
    database: Database | None = None,
    artifact_root: Path | None = None,
    storage: StorageSettings | None = None,
) -> FastAPI:
    """Build the service from the groups passed in; those not given are read together here,
    once (a bad DISTILLERY_ value stops it before it serves), from `distillery serve`'s
    settings or the environment."""
    missing = [
        cls
        for cls, given in ((ServiceSettings, settings), (StorageSettings, storage))
        if given is None
    ]
    read = Settings.current(*missing)
    settings = settings or read.get(ServiceSettings)
    storage = storage or read.get(StorageSettings)
    database = database or get_database(storage)
    upload_model = feedback_model(settings)
    root = (artifact_root or storage.resolved_artifact_root()).resolve()
    state = ServiceState(
        settings=settings,
        database=database,
        artifact_root=root,
        store=ArtifactStore.from_settings(storage, local_root=root),
        schema_head=database.head_revision(),
        feedback_model=upload_model,
    )
    if settings.enrollment == "open":
        log.warning(
            "enrollment policy is 'open' (the demo default): any client may register a device"
            " and upload feedback; set DISTILLERY_ENROLLMENT=key or approval in production"
        )
    # FastAPI's OpenTelemetry hooks check the global providers on every request; we export
    # Prometheus metrics, so they are off unless asked for.
    otel = settings.opentelemetry

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if state.chat is not None:  # chat model workers are child processes: stop them
            await state.chat.aclose()

    # Swagger UI and ReDoc from assets bundled in fastapi-offline: the docs work offline.
    app = FastAPIOffline(
        title="distillery",
        version=app_version(),
        description="Feedback upload and model manifest for the distillery phone app;"
        " OpenAI-compatible web chat on the published students.",
        docs_url=DOCS_PATH,
        redoc_url="/api/redoc",
        static_url="/api/docs-assets",
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
        # Operation ids are the endpoint names: generated clients get register_device, etc.
        generate_unique_id_function=lambda route: route.name,
        lifespan=lifespan,
        # The polled manifest first: routing tries routes in order.
        routes=[manifest.route()],
    )
    app.state.service = state
    app.include_router(feedback.build_router(upload_model))
    for module in (devices, privacy, review, models, artifacts, health, chat):
        app.include_router(module.router)
    web.mount(app)  # the web chat page and its chart data
    state.metrics.watch_live_quality(database)  # per-version live quality, read at scrape
    app.add_route("/metrics", state.metrics.render, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_middleware(TimingMiddleware, metrics=state.metrics)
    return app


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _request_invalid(request: Request, exc: Exception) -> Response:
    """Validation errors as `{detail: "<field>: <message>", errors: [...]}` (422)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_path(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if request.url.path == feedback.FEEDBACK_PATH:
        request.app.state.service.metrics.rejects.labels("invalid").inc()
    return json_response(
        {"detail": f"{first['field']}: {first['message']}{more}", "errors": errors}, 422
    )
