"""`GET /v1/models` and `POST /v1/chat/completions` (OpenAI-compatible, SSE when streaming)."""

# No `from __future__ import annotations`: FastAPI must see the body model itself.

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from serving.catalog import pick_primary
from serving.chat.render import sse, whole
from serving.chat.schemas import (
    ChatCompletion,
    ChatRequest,
    ModelCard,
    ModelList,
)
from serving.chat.turn import Turn
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
from storage.artifact_store import fetch_published
from storage.repo.catalog import Release

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["chat"])


def _enabled(state: ServiceState) -> None:
    if not state.settings.chat_enabled or state.chat is None:
        raise ApiError(404, "web chat is disabled (DISTILLERY_CHAT_ENABLED=false)", reason="off")


async def _chat_guard(request: Request) -> None:
    """Chat on, a device token (401/403), the device's chat rate limit, JSON, bounded body."""
    state = service(request)
    _enabled(state)
    device_id, token_hash = await state.auth.device_of(request.headers.get("authorization"))
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

    finished = False

    async def finish() -> None:
        """Once: give the slot and the worker back, close the worker stream."""
        nonlocal finished
        if finished:
            return
        finished = True
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
        # The background task also runs when the client left before the stream started
        # (then the generator's own `finally` never runs).
        return StreamingResponse(
            sse(turn, body, finish),
            media_type="text/event-stream",
            headers=headers,
            background=BackgroundTask(finish),
        )
    try:
        async for _event in turn.events():
            pass
        if turn.answer.strip():
            await turn.store()
    finally:
        await finish()
    return json_response(whole(turn, body).model_dump(mode="json"), headers=headers)


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
    if not path.is_file() and state.store.shared:  # published on another host
        await run_in_threadpool(fetch_published, state.store, state.artifact_root, str(rel))
    if not path.is_file() or not path.is_relative_to(state.artifact_root):
        raise ApiError(
            503, f"the file of {release.student} v{release.version} is missing", reason="missing"
        )
    return release, path
