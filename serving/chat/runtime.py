"""Worker processes that run chat models: one per student, started on demand, over a Unix socket.

The worker (`python -m chat_runtime.worker`) loads llama.cpp; this module only starts it,
waits for its /health, and hands out an HTTP client on its socket. A worker runs one file:
when a student's channel moves to another version, the next request starts a worker on the
new file and the old one stops once its streams are done.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving.http import ApiError

_POLL_S = 0.1


@dataclass
class Worker:
    """One running worker process and the client that talks to it."""

    key: tuple[str, int, str]  # (student, version, file path)
    process: subprocess.Popen[bytes]
    socket: Path
    log: Path
    client: httpx.AsyncClient
    users: int = 0
    retired: bool = False
    used_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        """The process has not exited."""
        return self.process.poll() is None

    def log_tail(self, chars: int = 600) -> str:
        """The end of the worker's output, for an error message."""
        try:
            return self.log.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""


class ChatRuntime:
    """Starts, reuses and stops workers; bounds generations running at once."""

    def __init__(
        self,
        *,
        max_workers: int,
        max_concurrent: int,
        n_ctx: int,
        threads: int,
        start_timeout_s: float,
        python: str | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.max_concurrent = max_concurrent
        self.n_ctx = n_ctx
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.python = python or sys.executable
        self.active = 0
        self._workers: dict[str, Worker] = {}  # by student
        self._retired: list[Worker] = []
        self._starting: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dir: Path | None = None  # made when the first worker starts

    def acquire_slot(self) -> None:
        """Take a generation slot, or 429 when `max_concurrent` are already running."""
        if self.active >= self.max_concurrent:
            raise ApiError(
                429,
                f"{self.active} chat generation(s) running, the limit is {self.max_concurrent};"
                " retry shortly",
                reason="chat_busy",
                headers={"Retry-After": "2"},
            )
        self.active += 1

    def release_slot(self) -> None:
        """Give a generation slot back."""
        self.active = max(0, self.active - 1)

    async def worker(self, student: str, version: int, path: Path) -> Worker:
        """A live worker on this file (started if needed); the caller must `done()` it."""
        key = (student, version, str(path))
        lock = self._starting.setdefault(student, asyncio.Lock())
        async with lock:
            current = self._workers.get(student)
            if current is not None and (current.key != key or not current.alive):
                self._retire(current)
                current = None
            if current is None:
                self._evict_for_one_more()
                current = await self._start(key, path)
                self._workers[student] = current
        current.users += 1
        current.used_at = time.monotonic()
        return current

    def done(self, worker: Worker) -> None:
        """A stream on `worker` ended; a retired worker with no streams left stops.

        Synchronous on purpose: it runs in the `finally` of a stream whose client left,
        where an await would be cancelled before the bookkeeping is done.
        """
        worker.users -= 1
        if worker.retired and worker.users <= 0:
            self._later(self._stop(worker))

    def _later(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)  # a task nobody references may be collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop every worker (service shutdown)."""
        for worker in [*self._workers.values(), *self._retired]:
            await self._stop(worker)
        self._workers.clear()
        self._retired.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _retire(self, worker: Worker) -> None:
        worker.retired = True
        self._workers = {s: w for s, w in self._workers.items() if w is not worker}
        if worker.users <= 0:
            self._later(self._stop(worker))
        else:
            self._retired.append(worker)

    def _evict_for_one_more(self) -> None:
        while len(self._workers) >= self.max_workers:
            oldest = min(self._workers.values(), key=lambda w: w.used_at)
            self._retire(oldest)

    async def _start(self, key: tuple[str, int, str], path: Path) -> Worker:
        student, version, _ = key
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="distillery-chat-"))
        tag = f"{student}-v{version}-{os.getpid()}-{time.monotonic_ns()}"
        sock = self._dir / f"{tag}.sock"
        log = self._dir / f"{tag}.log"
        cmd = [self.python, "-m", "chat_runtime.worker", "--model", str(path)]
        cmd += ["--socket", str(sock), "--name", student, "--n-ctx", str(self.n_ctx)]
        cmd += ["--threads", str(self.threads)]
        # chat_runtime sits beside serving/ (a checkout or site-packages): put it on the path.
        root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        transport = httpx.AsyncHTTPTransport(uds=str(sock))
        client = httpx.AsyncClient(transport=transport, base_url="http://worker", timeout=None)
        worker = Worker(key, process, sock, log, client)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if not worker.alive:
                await client.aclose()
                raise ApiError(
                    503,
                    f"the chat runtime for {student} v{version} exited at start"
                    f" ({process.returncode}): {worker.log_tail()}",
                    reason="chat_unavailable",
                )
            if sock.exists():
                try:
                    if (await client.get("/health", timeout=2)).status_code == 200:
                        return worker
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(_POLL_S)
        await self._stop(worker)
        raise ApiError(
            503,
            f"the chat runtime for {student} v{version} did not start within"
            f" {self.start_timeout_s:g} s",
            reason="chat_unavailable",
        )

    async def _stop(self, worker: Worker) -> None:
        if worker in self._retired:
            self._retired.remove(worker)
        await worker.client.aclose()
        if worker.alive:
            worker.process.terminate()
            try:
                await asyncio.to_thread(worker.process.wait, 10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait)
        for leftover in (worker.socket, worker.log):
            leftover.unlink(missing_ok=True)
