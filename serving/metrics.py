"""Prometheus metrics of one app instance and the ASGI middleware that times requests."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    """Counters and the latency histogram, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.uploads = Counter("distillery_feedback_uploads", "Accepted uploads", registry=r)
        self.accepted = Counter(
            "distillery_feedback_interactions_accepted", "Interactions newly stored", registry=r
        )
        self.duplicates = Counter(
            "distillery_feedback_duplicates", "Interactions already stored", registry=r
        )
        self.rejects = Counter(
            "distillery_feedback_rejects", "Rejected uploads", ["reason"], registry=r
        )
        self.latency = Histogram(
            "distillery_http_request_duration_seconds",
            "Request latency by route template",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def render(self, _request: Request) -> Response:
        """The /metrics endpoint: Prometheus text exposition format."""
        return Response(_generate(self.registry), media_type=CONTENT_TYPE_LATEST)


class TimingMiddleware:
    """Observes each HTTP request's latency under its route template (bounded label set)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Label lookup costs more than the observation; the label set is small and bounded.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (scope["method"], template, status)
            child = self._children.get(key)
            if child is None:
                child = self.metrics.latency.labels(key[0], template, str(status))
                self._children[key] = child
            child.observe(time.perf_counter() - start)
