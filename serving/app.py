"""The FastAPI app factory: routes, error shapes, metrics; storage is the only dependency."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from serving.http import ApiError, error_response, json_response
from serving.metrics import TimingMiddleware
from serving.routes import artifacts, feedback, health, manifest, models
from serving.schemas import field_path
from serving.settings import ServiceSettings
from serving.state import ServiceState, app_version
from storage.config import StorageSettings
from storage.db import Database, get_database


def create_app(
    settings: ServiceSettings | None = None, database: Database | None = None
) -> FastAPI:
    """Build the service; without arguments it uses the environment's settings and database."""
    settings = settings or ServiceSettings()
    database = database or get_database(StorageSettings())
    state = ServiceState(
        settings=settings,
        database=database,
        artifact_root=settings.resolved_artifact_root(),
        schema_head=database.head_revision(),
    )
    # FastAPI's OpenTelemetry hooks check the global providers on every request; we export
    # Prometheus metrics, so they are off unless asked for.
    otel = settings.opentelemetry
    app = FastAPI(
        title="distillery",
        version=app_version(),
        docs_url="/api/docs",
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
    )
    app.state.service = state
    for module in (feedback, models, artifacts, health):
        app.include_router(module.router)
    app.add_route("/metrics", state.metrics.render, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.router.routes.append(manifest.LATEST_ROUTE)  # listed; LatestFastPath answers it
    # Added before the timing middleware, so it runs inside it and is timed too.
    app.add_middleware(manifest.LatestFastPath)
    app.add_middleware(TimingMiddleware, metrics=state.metrics)
    return app


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _request_invalid(_request: Request, exc: Exception) -> Response:
    """FastAPI's own (query/path) validation errors in the same shape as ours."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_path(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    return json_response({"detail": f"{first['field']}: {first['message']}", "errors": errors}, 422)
