"""Prometheus metrics of one app instance, the ASGI middleware that times requests, and the
live quality of the versions phones run, read from the database at scrape time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.db import Database
from storage.registry.rollouts import CANARY
from storage.repo.catalog import canary_releases, channel_releases
from storage.repo.live_quality import LiveQuality, VersionQuality

log = logging.getLogger("distillery.serving")


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

        self.live_quality: LiveQualityCollector | None = None

    def watch_live_quality(self, database: Database, **options: Any) -> LiveQualityCollector:
        """Expose the live quality of each student's stable and canary version (see
        LiveQualityCollector; `options` are its keyword arguments)."""
        self.live_quality = LiveQualityCollector(database, **options)
        self.registry.register(self.live_quality)
        return self.live_quality

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


# Gauge name, help, and the VersionQuality estimate it shows.
_QUALITY_GAUGES = (
    ("distillery_live_mean_rating", "Mean user rating (1-5) of the version's answers",
     "mean_rating"),
    ("distillery_live_thumbs_down_share", "Share of rated answers rated 1 or 2", "thumbs_down"),
    ("distillery_live_correction_share", "Share of answers the user corrected", "corrections"),
    ("distillery_live_answer_chars", "Mean answer length in characters", "answer_chars"),
    ("distillery_live_chat_entropy", "Mean token entropy of web chat answers (nats per token)",
     "mean_entropy"),
)  # fmt: skip
_SERVED = ["student", "version", "channel"]


class LiveQualityCollector:
    """Live quality per served version (`storage.repo.live_quality`), read at scrape time.

    The label sets are bounded: each student's stable version and the version of its running
    rollout (`channel` "stable" or "canary"), whatever else phones report. Each gauge reads
    the interactions received over the last `days` days; a metric without observations is
    left out rather than shown as 0. One read serves every scrape for `cache_seconds`, and
    scrapes that arrive during a read wait for it, so a scrape storm costs one read. A
    failed read shows `distillery_live_quality_up 0` (cached as long) and nothing else.
    """

    def __init__(
        self,
        database: Database,
        *,
        days: int = 14,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.days = days
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._families: list[GaugeMetricFamily] = []
        self._read_at = float("-inf")

    def describe(self) -> list[GaugeMetricFamily]:
        """The families without samples: the registry checks names without a read."""
        return self._empty()

    def collect(self) -> list[GaugeMetricFamily]:
        """The families as of the last read, read again once `cache_seconds` have passed."""
        with self._lock:
            if self.clock() - self._read_at >= self.cache_seconds:
                self._families = self._read()
                self._read_at = self.clock()
            return self._families

    def _empty(self) -> list[GaugeMetricFamily]:
        window = f" over the last {self.days} days"
        families = [
            GaugeMetricFamily("distillery_live_quality_up",
                              "1 when the last read of live quality succeeded, else 0"),
            GaugeMetricFamily("distillery_live_quality_read_seconds",
                              "How long the last read of live quality took"),
            GaugeMetricFamily("distillery_rollout_percent",
                              "Share of devices (percent) a running rollout serves its version",
                              labels=["student", "version"]),
            GaugeMetricFamily("distillery_live_interactions",
                              "Interactions answered by the version" + window, labels=_SERVED),
            GaugeMetricFamily("distillery_live_ratings",
                              "Rated interactions of the version" + window, labels=_SERVED),
        ]  # fmt: skip
        families += [
            GaugeMetricFamily(n, h + window, labels=_SERVED) for n, h, _ in _QUALITY_GAUGES
        ]
        families.append(
            GaugeMetricFamily(
                "distillery_live_quality_interval",
                "Bounds of the 95 % interval of each live quality metric" + window,
                labels=[*_SERVED, "metric", "bound"],
            )
        )
        return families

    def _read(self) -> list[GaugeMetricFamily]:
        begun = time.perf_counter()
        families = self._empty()
        up, seconds, percent, interactions, ratings, *gauges, interval = families
        try:
            with self.database.transaction() as session:
                served = {
                    (r.student, r.version): "stable" for r in channel_releases(session=session)
                }
                for student, canary in canary_releases(session=session).items():
                    served[(student, canary.release.version)] = CANARY
                    percent.add_metric([student, str(canary.release.version)], canary.percent)
                found: dict[tuple[str, str], VersionQuality] = {}
                for student in sorted({s for s, _ in served}):
                    versions = [str(v) for s, v in served if s == student]
                    live = LiveQuality.read(
                        session, days=self.days, model_name=student, model_versions=versions
                    )
                    found |= {(q.model_name, q.model_version): q for q in live.versions()}
        except Exception:  # a scrape must answer even when the database does not
            log.exception("live quality for /metrics: the database read failed")
            up.add_metric([], 0)
            return [up]
        for (student, version), channel in sorted(served.items()):
            labels = [student, str(version), channel]
            quality = found.get((student, str(version)))
            interactions.add_metric(labels, quality.interactions if quality else 0)
            rated = quality.mean_rating if quality else None
            ratings.add_metric(labels, rated.n if rated else 0)
            for gauge, (_, _, key) in zip(gauges, _QUALITY_GAUGES, strict=True):
                estimate = quality.metrics()[key] if quality else None
                if estimate is None:
                    continue
                gauge.add_metric(labels, estimate.value)
                interval.add_metric([*labels, key, "low"], estimate.low)
                interval.add_metric([*labels, key, "high"], estimate.high)
        up.add_metric([], 1)
        seconds.add_metric([], time.perf_counter() - begun)
        return families
