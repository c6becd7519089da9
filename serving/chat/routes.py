"""`GET /v1/models` and `POST /v1/chat/completions` (OpenAI-compatible, SSE when streaming)."""

# No `from __future__ import annotations`: FastAPI must see the body model itself.

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from serving.auth import hash_token
from serving.catalog import pick_primary
from serving.chat.schemas import (
    AnswerMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    ModelCard,
    ModelList,
    TokenUncertainty,
)
from serving.chat.turn import Turn, stored_prompt
from serving.http import (
    ApiError,
    GuardedRoute,
    before_body,
    documented,
    json_response,
    read_limited_body,
    require_json,
    utf8_body,
)
from serving.routes.feedback import bearer
from serving.state import ServiceState, service
from storage.repo.catalog import Release

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["chat"])


def _enabled(state: ServiceState) -> None:
    if not state.settings.chat_enabled or state.chat is None:
        raise ApiError(404, "web chat is disabled (DISTILLERY_CHAT_ENABLED=false)", reason="off")


async def _chat_guard(request: Request) -> None:
    """Chat on, a device token (401/403), the device's chat rate limit, JSON, bounded body."""
    state = service(request)
    _enabled(state)
    device_id, token = state.auth.claimed_device(request.headers.get("authorization"))
    token_hash = hash_token(token)
    if not state.auth.cached(device_id, token_hash):
        await run_in_threadpool(state.auth.verify, device_id, token_hash)
    state.limits.hit(state.limits.chat, "device", device_id)
    require_json(request)
    request._body = utf8_body(await read_limited_body(request, state.settings.chat_max_body_bytes))
    request.state.device = (device_id, token_hash)


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The students that can chat: the version each one's channel points to."""
    state = service(request)
    _enabled(state)
    await state.catalog.ensure_fresh()
    cards = []
    for release in state.catalog.releases:
        primary = pick_primary(list(release.files), state.settings.quantization_preference)
        created = int(release.published_at.timestamp()) if release.published_at else 0
        cards.append(
            ModelCard(
                id=release.student,
                created=created,
                version=release.version,
                file_name=(primary or {}).get("name"),
                quantization=(primary or {}).get("quantization"),
            )
        )
    return ModelList(data=cards)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "The answer; with `stream: true`, server-sent events of "
            "`chat.completion.chunk` objects (each token with `token.p`, `token.entropy` "
            "and any `alerts`; the last with `usage`, `uncertainty` and `interaction_id`), "
            "then `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **documented(401, 403, 404, 413, 415, 422, 429),
        503: {"description": "The chat runtime could not start or failed."},
    },
)
@before_body(_chat_guard)
async def chat_completions(
    request: Request,
    body: ChatRequest,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Response:
    """Answer with the stable version of a student, run by llama.cpp on the file phones get.

    The turn is stored as a `web` interaction of the calling device with its uncertainty
    summary; rate or correct it through POST /api/training/feedback with the same id.
    """
    state = service(request)
    settings = state.settings
    max_tokens = _check_limits(state, body)
    release, path = await _release(state, body.model)
    runtime = state.chat
    assert runtime is not None
    runtime.acquire_slot()
    try:
        worker = await runtime.worker(release.student, release.version, path)
    except BaseException:
        runtime.release_slot()
        raise
    top = max(settings.chat_top_logprobs, body.top_logprobs or 0)
    payload = {
        "messages": [m.model_dump() for m in body.messages],
        "max_tokens": max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "top_logprobs": top,
    }
    turn = Turn(
        state,
        worker,
        release.student,
        release.version,
        request.state.device,
        body.messages,
        payload,
    )

    async def finish() -> None:
        # Bookkeeping first, synchronously: a client that left cancels the awaits below.
        runtime.release_slot()
        runtime.done(worker)
        await asyncio.shield(turn.close())  # closing the worker stream stops its generation

    try:
        await turn.open()
    except BaseException:
        await finish()
        raise
    headers = {
        "X-Distillery-Student": release.student,
        "X-Distillery-Version": str(release.version),
    }
    if body.stream:
        return StreamingResponse(
            _sse(turn, body, finish), media_type="text/event-stream", headers=headers
        )
    try:
        async for _event in turn.events():
            pass
        if turn.answer.strip():
            await turn.store()
    finally:
        await finish()
    return json_response(_whole(turn, body).model_dump(mode="json"), headers=headers)


def _check_limits(state: ServiceState, body: ChatRequest) -> int:
    """The max_tokens to use; 422/413 naming the limit a request exceeds."""
    s = state.settings
    default = min(s.chat_default_max_tokens, s.chat_max_tokens)
    asked = body.max_completion_tokens or body.max_tokens or default
    if asked > s.chat_max_tokens:
        raise _invalid("max_tokens", f"must be at most {s.chat_max_tokens} (got {asked})")
    if len(body.messages) > s.chat_max_messages:
        raise _invalid("messages", f"at most {s.chat_max_messages} messages per request")
    chars = sum(len(m.content) for m in body.messages)
    if chars > s.chat_max_prompt_chars:
        raise ApiError(
            413,
            f"messages hold {chars} characters; the limit is {s.chat_max_prompt_chars}",
            reason="prompt_too_long",
        )
    if body.messages[-1].role != "user":
        raise _invalid("messages", "the last message must be the user's")
    return asked


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        f"{field}: {message}",
        reason="invalid",
        errors=[{"field": field, "message": message, "type": "value_error"}],
    )


async def _release(state: ServiceState, model: str | None) -> tuple[Release, Path]:
    """The release asked for (default: the first student) and its local GGUF file."""
    await state.catalog.ensure_fresh()
    releases = state.catalog.releases
    channel = state.settings.mobile_channel
    if not releases:
        raise ApiError(404, f"no student is published on channel {channel!r} yet", reason="none")
    if model:
        release = next((r for r in releases if r.student == model), None)
        if release is None:
            known = ", ".join(r.student for r in releases)
            raise ApiError(404, f"unknown model {model!r}; these can chat: {known}", reason="none")
    else:
        release = releases[0]
    primary = pick_primary(list(release.files), state.settings.quantization_preference)
    rel = (primary or {}).get("path")
    if not rel or (primary or {}).get("url"):
        raise ApiError(
            503,
            f"{release.student} v{release.version} has no local GGUF file to run",
            reason="chat_unavailable",
        )
    path = (state.artifact_root / str(rel)).resolve()
    if not path.is_file() or not path.is_relative_to(state.artifact_root):
        raise ApiError(
            503, f"the file of {release.student} v{release.version} is missing", reason="missing"
        )
    return release, path


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


async def _sse(turn: Turn, body: ChatRequest, finish: Any) -> AsyncIterator[bytes]:
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


def _whole(turn: Turn, body: ChatRequest) -> ChatCompletion:
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
        usage=_usage(turn),  # type: ignore[arg-type]
        student=turn.student,
        version=turn.version,
        interaction_id=turn.interaction_id if turn.stored else None,
        uncertainty=turn.monitor.summary(),  # type: ignore[arg-type]
        tokens=[
            TokenUncertainty(index=s.index, text=t, p=s.p, entropy=s.entropy)
            for s, t in zip(turn.stats, turn.text, strict=True)
        ],
    )
