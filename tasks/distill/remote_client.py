"""HTTP calls to a remote teacher: bounded concurrency, retries with backoff, a token budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from tasks.models.remote import RemoteTeacher, api_key

log = logging.getLogger(__name__)
T = TypeVar("T")
HOUR_S = 3600.0


class RemoteTeacherError(RuntimeError):
    """The server refused a call for a reason retrying cannot fix (bad request, bad key)."""


class TokenBudget:
    """At most `limit` tokens per sliding `window_s`; a call over it waits (never fails).

    The clock and the sleep are injectable so a test can use a two-second window. Reservations
    are made before a call (an estimate) and settled with the server's reported usage after.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = HOUR_S,
        *,
        label: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit, self.window_s, self.label = int(limit), float(window_s), label
        self.clock, self.sleep = clock, sleep
        self.pauses = 0
        self._spent: deque[list[float]] = deque()  # [time, tokens], oldest first
        self._lock = threading.Lock()  # shared by event loops of successive stages

    def used(self) -> int:
        """Tokens counted in the current window."""
        with self._lock:
            self._expire(self.clock())
            return int(sum(n for _, n in self._spent))

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()

    async def reserve(self, tokens: int) -> list[float]:
        """Wait until `tokens` fit in the window, then count them; returns the entry to settle."""
        # A call bigger than the whole budget waits for an empty window rather than forever.
        tokens = max(1, min(int(tokens), self.limit))
        while True:
            with self._lock:
                now = self.clock()
                self._expire(now)
                used = sum(n for _, n in self._spent)
                if used + tokens <= self.limit:
                    entry = [now, float(tokens)]
                    self._spent.append(entry)
                    return entry
                need, freed, until = used + tokens - self.limit, 0.0, now
                for at, n in self._spent:
                    freed, until = freed + n, at + self.window_s
                    if freed >= need:
                        break
            wait = max(until - now, 0.01)
            self.pauses += 1
            eta = datetime.now(UTC) + timedelta(seconds=wait)
            log.warning(
                "remote teacher %s: token budget of %d per %.0f s reached (%d used); pausing "
                "%.1f s, resuming at %s UTC",
                self.label,
                self.limit,
                self.window_s,
                used,
                wait,
                eta.strftime("%H:%M:%S"),
            )
            await self.sleep(wait)

    def settle(self, entry: list[float], tokens: int) -> None:
        """Replace a reservation's estimate by the tokens the server says it used."""
        with self._lock:
            entry[1] = float(max(tokens, 0))


_BUDGETS: dict[tuple[str, str], TokenBudget] = {}


def shared_budget(teacher: RemoteTeacher) -> TokenBudget:
    """One budget per served model in this process, so every stage draws on the same window."""
    key = (teacher.base_url, teacher.model)
    if key not in _BUDGETS:
        _BUDGETS[key] = TokenBudget(teacher.tokens_per_hour, label=teacher.name)
    return _BUDGETS[key]


@dataclass(frozen=True)
class ChatAnswer:
    """One chat completion: the text and what the server said about it."""

    text: str
    model: str
    finish_reason: str
    completion_tokens: int


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):  # refused, reset, timed out
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class RemoteClient:
    """Chat answers and vLLM prompt log-probs from one remote teacher."""

    def __init__(
        self,
        teacher: RemoteTeacher,
        *,
        budget: TokenBudget | None = None,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.teacher = teacher
        self.budget = budget or shared_budget(teacher)
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        key = api_key(teacher)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = 0

    def _wait(self, state: Any) -> float:
        # A 429's Retry-After says when the server takes calls again; otherwise back off.
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, httpx.HTTPStatusError):
            after = exc.response.headers.get("retry-after", "")
            if after.replace(".", "", 1).isdigit():
                return min(float(after), self.max_backoff_s)
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s
        )
        return float(backoff(state))

    def _log_retry(self, state: Any) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "remote teacher %s: attempt %d failed (%s); retrying",
            self.teacher.name,
            state.attempt_number,
            str(exc).splitlines()[0] if exc else "?",
        )

    async def _post(
        self, http: httpx.AsyncClient, path: str, body: dict[str, Any], estimate: int
    ) -> dict[str, Any]:
        entry = await self.budget.reserve(estimate)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.teacher.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await http.post(path, json=body)
                if response.status_code < 500 and response.status_code not in (200, 429):
                    raise RemoteTeacherError(
                        f"remote teacher {self.teacher.name} ({self.teacher.base_url}) answered "
                        f"{response.status_code} to {path}: {response.text[:300]}"
                    )
                response.raise_for_status()
        data = dict(response.json())
        usage = data.get("usage") or {}
        self.budget.settle(entry, int(usage.get("total_tokens") or estimate))
        return data

    async def _each(
        self,
        bodies: list[tuple[str, dict[str, Any], int]],
        on_result: Callable[[int, dict[str, Any]], None],
    ) -> None:
        """POST every body with at most `concurrency` in flight; `on_result` as each returns.

        Every call runs to its end before the first failure is raised, so the answers that did
        arrive are kept (cached) and the next cycle asks only for the rest.
        """
        gate = asyncio.Semaphore(self.teacher.concurrency)
        timeout = httpx.Timeout(self.teacher.timeout_s, connect=30.0)
        async with httpx.AsyncClient(
            base_url=self.teacher.base_url.rstrip("/") + "/", headers=self._headers, timeout=timeout
        ) as http:

            async def one(i: int, path: str, body: dict[str, Any], estimate: int) -> None:
                async with gate:
                    on_result(i, await self._post(http, path, body, estimate))

            results = await asyncio.gather(
                *(one(i, *b) for i, b in enumerate(bodies)), return_exceptions=True
            )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            log.error(
                "remote teacher %s: %d of %d calls failed",
                self.teacher.name,
                len(errors),
                len(bodies),
            )
            raise errors[0]

    def chat(
        self,
        conversations: list[list[dict[str, str]]],
        max_tokens: int,
        on_answer: Callable[[int, ChatAnswer], None],
    ) -> None:
        """Greedy chat completions, one per conversation; `on_answer(i, answer)` as each comes."""
        bodies = []
        for messages in conversations:
            body = {
                "model": self.teacher.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": 0.0,
                "seed": 0,
            }
            # ~3 characters per token over-counts English a little: the budget errs safe.
            bodies.append(("chat/completions", body, len(json.dumps(messages)) // 3 + max_tokens))

        def parse(i: int, data: dict[str, Any]) -> None:
            choice = data["choices"][0]
            on_answer(
                i,
                ChatAnswer(
                    text=str(choice["message"].get("content") or ""),
                    model=str(data.get("model", self.teacher.model)),
                    finish_reason=str(choice.get("finish_reason")),
                    completion_tokens=int((data.get("usage") or {}).get("completion_tokens", 0)),
                ),
            )

        run_sync(self._each(bodies, parse))

    def prompt_logprobs(
        self, rows: list[list[int]], k: int, on_row: Callable[[int, list[Any]], None]
    ) -> None:
        """vLLM's top-k log-probs of every prompt token, given as token ids (our tokenization)."""
        bodies = []
        for ids in rows:
            # vLLM refuses max_tokens=0 ("at least 1"): one generated token is the least it
            # allows; prompt_logprobs cover the prompt, the generated token is ignored.
            body = {
                "model": self.teacher.model,
                "prompt": list(ids),
                "max_tokens": 1,
                "temperature": 0.0,
                "prompt_logprobs": k,
            }
            bodies.append(("completions", body, len(ids) + 1))

        def parse(i: int, data: dict[str, Any]) -> None:
            choice = data["choices"][0]
            if choice.get("prompt_logprobs") is None:
                raise RemoteTeacherError(
                    f"remote teacher {self.teacher.name}: the server returned no prompt_logprobs "
                    '(only vLLM does; set server = "vllm" only for a vLLM server)'
                )
            on_row(i, list(choice["prompt_logprobs"]))

        run_sync(self._each(bodies, parse))
