"""One chat turn: relay the worker's token stream, measure uncertainty, store the interaction."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from serving.chat.runtime import Worker
from serving.chat.schemas import ChatMessage
from serving.chat.uncertainty import Alert, Thresholds, TokenStat, UncertaintyMonitor, token_stat
from serving.http import ApiError
from serving.state import ServiceState
from serving.writer import Upload
from storage.repo.feedback import FeedbackRow


@dataclass(frozen=True)
class TokenEvent:
    """One streamed token with its stat, the alerts it fired and its OpenAI logprobs entry."""

    stat: TokenStat
    alerts: list[Alert]
    entry: dict[str, Any]


def stored_prompt(messages: list[ChatMessage]) -> str:
    """The prompt kept for training: the user's message, or the transcript of a longer chat."""
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user" and len(messages) == 1:
        return turns[0].content
    return "\n\n".join(f"{m.role}: {m.content}" for m in messages)


@dataclass
class Turn:
    """A generation in flight, then its result; `events()` drives it."""

    state: ServiceState
    worker: Worker
    student: str
    version: int
    device: tuple[str, str]
    messages: list[ChatMessage]
    payload: dict[str, Any]
    interaction_id: uuid.UUID = field(default_factory=uuid.uuid4)
    created: int = field(default_factory=lambda: int(time.time()))
    text: list[str] = field(default_factory=list)
    stats: list[TokenStat] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str = "stop"
    timings: dict[str, float] = field(default_factory=dict)
    stored: bool = False
    stored_at: datetime | None = None
    monitor: UncertaintyMonitor = field(init=False)
    _response: httpx.Response | None = None
    _started: float = field(default_factory=time.perf_counter)
    _first: float = 0.0
    _last: float = 0.0

    def __post_init__(self) -> None:
        s = self.state.settings
        self.monitor = UncertaintyMonitor(
            Thresholds(s.chat_low_p, s.chat_alert_spike_entropy, s.chat_alert_low_run)
        )

    @property
    def fingerprint(self) -> str:
        """`<student>:v<version>`."""
        return f"{self.student}:v{self.version}"

    async def open(self) -> None:
        """Send the request to the worker; its refusals become this request's 4xx/503."""
        client = self.worker.client
        request = client.build_request("POST", "/v1/chat/completions", json=self.payload)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(
                503, f"chat runtime unreachable: {exc}", reason="chat_unavailable"
            ) from None
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")
            await response.aclose()
            message = _error_message(body)
            status = response.status_code if response.status_code in (413, 422) else 503
            raise ApiError(status, f"the model refused the request: {message}", reason="chat")
        self._response = response

    async def events(self) -> AsyncIterator[TokenEvent]:
        """Token events as the worker streams them; fills usage and finish reason at the end."""
        try:
            async for event in self._events():
                yield event
        except httpx.HTTPError as exc:  # the worker died or hung up mid-answer
            raise ApiError(503, f"chat runtime failed: {exc!r}", reason="chat") from None

    async def _events(self) -> AsyncIterator[TokenEvent]:
        assert self._response is not None, "open() first"
        async for line in self._response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise ApiError(503, f"chat runtime: {_error_message(data)}", reason="chat")
            choice = chunk["choices"][0]
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                self.usage = chunk.get("usage") or {}
                self.timings = chunk.get("timings") or {}
            content = (choice.get("logprobs") or {}).get("content") or []
            for entry in content:
                self._last = time.perf_counter()
                self._first = self._first or self._last
                stat = token_stat(len(self.stats), entry)
                self.stats.append(stat)
                self.entries.append(entry)
                self.text.append(choice["delta"].get("content", ""))
                yield TokenEvent(stat, self.monitor.feed(stat), entry)

    async def close(self) -> None:
        """Close the worker stream (a client that left stops the generation there)."""
        if self._response is not None:
            await self._response.aclose()

    @property
    def answer(self) -> str:
        """The answer so far."""
        return "".join(self.text)

    def rate(self) -> dict[str, float]:
        """As the service saw it: total seconds, time to the first token, tokens/s after it."""
        n = len(self.stats)
        gap = self._last - self._first
        return {
            "seconds": round(time.perf_counter() - self._started, 4),
            "first_token_s": round(self._first - self._started, 4) if n else 0.0,
            "tokens_per_s": round((n - 1) / gap, 2) if n > 1 and gap > 0 else 0.0,
        }

    async def store(self) -> None:
        """Keep the turn as a `web` interaction of the asking device (same writer as phones)."""
        device_id, token_hash = self.device
        now = datetime.now(UTC)
        row = FeedbackRow(
            id=self.interaction_id,
            model_name=self.student,
            model_version=str(self.version),
            prompt=stored_prompt(self.messages),
            response=self.answer,
            client_created_at=now,
            latency_ms=int((time.perf_counter() - self._started) * 1000),
            category="chat",
            source="web",
            uncertainty=self.monitor.summary(),
            consent=self.state.settings.default_consent,  # chat has no consent field yet
        )
        upload = Upload(device_id, token_hash, [row], now, self.state.due_for_touch(device_id))
        await self.state.writer.store(upload)
        self.stored, self.stored_at = True, now


def _error_message(body: str) -> str:
    try:
        parsed = json.loads(body)
        return str(parsed.get("error", {}).get("message") or parsed)[:500]
    except (ValueError, AttributeError):
        return body[:500]
