"""Group commit of feedback uploads: uploads waiting together share one transaction.

Each upload is answered only after the transaction holding it committed. A dedicated
writer thread takes whatever uploads are queued (up to a bound) and stores them in one
transaction: the commit (an fsync on SQLite, a WAL flush on PostgreSQL) is paid once per
group instead of once per upload. Every upload re-checks its device inside the
transaction, so a revoked device or a spent daily quota is refused there, at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from serving.auth import check_credentials
from serving.http import ApiError
from storage.db import Database
from storage.repo.devices import get_credentials, interactions_since, touch_device
from storage.repo.feedback import BatchResult, FeedbackRow, insert_feedback_batch

_IDLE_EXIT_S = 5.0  # an idle writer thread exits; the next upload starts another


@dataclass(frozen=True)
class Upload:
    """One validated upload waiting to be stored."""

    device_id: str
    token_hash: str
    rows: list[FeedbackRow]
    client_timestamp: datetime
    touch: bool


class FeedbackWriter:
    """Queues uploads for a writer thread that commits them in groups."""

    def __init__(self, database: Database, *, max_group: int, daily_quota: int) -> None:
        self.database = database
        self.max_group = max_group
        self.daily_quota = daily_quota
        self._queue: queue.SimpleQueue[tuple[Upload, Future[BatchResult]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def store(self, upload: Upload) -> BatchResult:
        """Store an upload; returns after its transaction committed (or raises its refusal)."""
        future: Future[BatchResult] = Future()
        self._queue.put((upload, future))
        self._ensure_thread()
        return await asyncio.wrap_future(future)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="feedback-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=_IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # nothing slipped in: let the next store restart
                        self._thread = None
                        return
                continue
            group = [first]
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[tuple[Upload, Future[BatchResult]]]) -> None:
        outcomes: list[BatchResult | BaseException] = []
        try:
            with self.database.transaction(write=True) as session:
                outcomes = [self._one(session, upload) for upload, _ in group]
        except SQLAlchemyError:
            if len(group) > 1:  # one upload's failure must not fail the others: alone each
                for item in group:
                    self._commit([item])
                return
            outcomes = [ApiError(503, "the database refused the write; retry", reason="db")]
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _one(self, session: Session, upload: Upload) -> BatchResult | ApiError:
        """Check the device, then insert; refusals are returned, database errors raised."""
        try:
            stored = get_credentials(session=session, device_id=upload.device_id, lock=True)
            check_credentials(stored, upload.token_hash)
            if self.daily_quota:
                self._check_quota(session, upload)
        except ApiError as refused:
            return refused
        result = insert_feedback_batch(
            session=session,
            device_id=upload.device_id,
            interactions=upload.rows,
            client_timestamp=upload.client_timestamp,
        )
        if upload.touch:
            touch_device(session=session, device_id=upload.device_id)
        return result

    def _check_quota(self, session: Session, upload: Upload) -> None:
        now = datetime.now(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = interactions_since(session=session, device_id=upload.device_id, since=day)
        if used + len(upload.rows) > self.daily_quota:
            retry = int((day + timedelta(days=1) - now).total_seconds()) + 1
            raise ApiError(
                429,
                f"daily quota of {self.daily_quota} interactions reached ({used} stored today);"
                " retry after midnight UTC",
                reason="quota",
                headers={"Retry-After": str(retry)},
            )
