"""What a chat turn sends back: SSE chunks while it streams, or one whole ChatCompletion."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from serving.chat.schemas import (
    AnswerMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    TokenUncertainty,
)
from serving.chat.turn import Turn, stored_prompt
from serving.http import ApiError


def _head(turn: Turn) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{turn.interaction_id.hex}",
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.student,
        "system_fingerprint": turn.fingerprint,
        "student": turn.student,
        "version": turn.version,
    }


def _openai_entry(entry: dict[str, Any], top: int) -> dict[str, Any]:
    """A worker logprobs entry as OpenAI's: the requested number of alternatives."""
    out: dict[str, Any] = {k: entry[k] for k in ("token", "logprob", "bytes") if k in entry}
    out["top_logprobs"] = (entry.get("top_logprobs") or [])[:top]
    return out


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def sse(
    turn: Turn, body: ChatRequest, finish: Callable[[], Awaitable[None]]
) -> AsyncIterator[bytes]:
    """The SSE stream: a head chunk, one chunk per token, a summary chunk, [DONE]."""
    head = _head(turn)
    top = body.top_logprobs or 0
    try:
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield _event({**head, "choices": [first], "interaction_id": str(turn.interaction_id)})
        try:
            async for ev in turn.events():
                logprobs = {"content": [_openai_entry(ev.entry, top)]} if body.logprobs else None
                choice = {
                    "index": 0,
                    "delta": {"content": turn.text[-1]},
                    "logprobs": logprobs,
                    "finish_reason": None,
                }
                token = {
                    "index": ev.stat.index,
                    "text": turn.text[-1],
                    "p": round(ev.stat.p, 5),
                    "entropy": round(ev.stat.entropy, 5),
                }
                event = {**head, "choices": [choice], "token": token}
                if ev.alerts:
                    event["alerts"] = [a.to_dict() for a in ev.alerts]
                yield _event(event)
            if turn.answer.strip():
                await turn.store()
        except ApiError as exc:  # headers are sent: the error travels as an event
            yield _event({"error": {"message": exc.message, "type": exc.reason}})
            return
        last = {"index": 0, "delta": {}, "finish_reason": turn.finish_reason}
        yield _event(
            {
                **head,
                "choices": [last],
                "usage": _usage(turn),
                "interaction_id": str(turn.interaction_id) if turn.stored else None,
                "stored": turn.stored,
                # What the page re-sends with a rating or correction (the phones' route).
                "stored_prompt": stored_prompt(turn.messages) if turn.stored else None,
                "created_at": turn.stored_at.isoformat() if turn.stored_at else None,
                "uncertainty": turn.monitor.summary(),
                "timings": {**turn.timings, **turn.rate()},
            }
        )
        yield b"data: [DONE]\n\n"
    finally:
        await finish()


def _usage(turn: Turn) -> dict[str, int]:
    prompt = int(turn.usage.get("prompt_tokens", 0))
    completion = int(turn.usage.get("completion_tokens", len(turn.stats)))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def whole(turn: Turn, body: ChatRequest) -> ChatCompletion:
    top = body.top_logprobs or 0
    logprobs = {"content": [_openai_entry(e, top) for e in turn.entries]} if body.logprobs else None
    return ChatCompletion(
        id=f"chatcmpl-{turn.interaction_id.hex}",
        created=turn.created,
        model=turn.student,
        system_fingerprint=turn.fingerprint,
        choices=[
            Choice(
                message=AnswerMessage(content=turn.answer),
                logprobs=logprobs,
                finish_reason=turn.finish_reason,
            )
        ],
        usage=_usage(turn),
        student=turn.student,
        version=turn.version,
        interaction_id=turn.interaction_id if turn.stored else None,
        uncertainty=turn.monitor.summary(),
        tokens=[
            TokenUncertainty(index=s.index, text=t, p=s.p, entropy=s.entropy)
            for s, t in zip(turn.stats, turn.text, strict=True)
        ],
    )
