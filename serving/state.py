"""Per-app state shared by the routes: settings, database, auth, caches and metrics."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from serving.auth import Authenticator
from serving.catalog import CatalogCache
from serving.chat.runtime import ChatRuntime
from serving.metrics import ServiceMetrics
from serving.ratelimit import RateLimits
from serving.settings import ServiceSettings
from serving.writer import FeedbackWriter
from storage.artifact_store import ArtifactStore
from storage.db import Database

_TOUCH_INTERVAL_S = 60.0


def app_version() -> str:
    """The installed distillery version."""
    try:
        return version("distillery")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class ServiceState:
    """Everything a route needs, built once by create_app."""

    settings: ServiceSettings
    database: Database
    artifact_root: Path
    # Where files of other hosts come from: the shared store this root mirrors (if any).
    store: ArtifactStore
    schema_head: str | None
    feedback_model: type[BaseModel]
    auth: Authenticator = field(init=False)
    catalog: CatalogCache = field(init=False)
    metrics: ServiceMetrics = field(init=False)
    limits: RateLimits = field(init=False)
    writer: FeedbackWriter = field(init=False)
    chat: ChatRuntime | None = field(init=False, default=None)
    version: str = field(default_factory=app_version)
    _sqlite_lock: threading.Lock = field(default_factory=threading.Lock)
    _touched: dict[str, float] = field(default_factory=dict)
    _trusted: frozenset[str] = frozenset()
    # Trusted request origins by (scheme, Host, server, root path): see routes/manifest.py.
    base_urls: dict[tuple[object, ...], str] = field(default_factory=dict)
    # The manifest's reusable 200/304 answers by (ETag, not modified): see routes/manifest.py.
    manifest_answers: dict[tuple[str, bool], Response] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._trusted = self.settings.trusted_hosts()
        self.auth = Authenticator(self.database)
        self.catalog = CatalogCache(self.database, self.settings)
        self.metrics = ServiceMetrics()
        self.limits = RateLimits(self.settings)
        self.writer = FeedbackWriter(
            self.database,
            max_group=self.settings.group_commit_max_uploads,
            daily_quota=self.settings.device_daily_quota,
        )
        s = self.settings
        if s.chat_enabled:
            self.chat = ChatRuntime(
                max_workers=s.chat_max_workers,
                max_concurrent=s.chat_max_concurrent,
                n_ctx=s.chat_context_tokens,
                threads=s.chat_threads,
                start_timeout_s=s.chat_start_timeout_s,
            )

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """Host names whose Host header may build download URLs."""
        return self._trusted

    def due_for_touch(self, device_id: str) -> bool:
        """True at most once a minute per device: last_seen_at needs no finer grain."""
        now = time.monotonic()
        if now - self._touched.get(device_id, float("-inf")) < _TOUCH_INTERVAL_S:
            return False
        if len(self._touched) >= 100_000:
            self._touched.clear()
        self._touched[device_id] = now
        return True

    def write_lock(self) -> AbstractContextManager[object]:
        """On SQLite, writers of this process queue on a lock instead of busy-waiting."""
        return self._sqlite_lock if self.database.is_sqlite else nullcontext()


def service(request: Request) -> ServiceState:
    """The ServiceState of the app handling this request."""
    state: ServiceState = request.app.state.service
    return state
