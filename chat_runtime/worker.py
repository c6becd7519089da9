"""The worker process: one GGUF file behind a small OpenAI-compatible HTTP API (SSE stream).

    python -m chat_runtime.worker --model FILE.gguf --socket /tmp/x.sock [--name student:v1]

serving/ starts it and talks to it over a Unix socket, so the phone-facing service never
imports llama.cpp and keeps answering while a model generates. Chunks are OpenAI
`chat.completion.chunk`s with `logprobs.content` (top alternatives) plus the exact entropy
of each token (`entropy`, an extension) and, in the last chunk, `usage` and `timings`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chat_runtime.engine import Engine, Outcome, PromptTooLong, Sampling, Token


class Message(BaseModel):
    """One chat message."""

    role: str
    content: str


class ChatRequest(BaseModel):
    """The part of an OpenAI chat request this worker honours (it always streams)."""

    messages: list[Message] = Field(min_length=1)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    seed: int | None = None
    top_logprobs: int = Field(5, ge=1, le=20)


def _chunk(cid: str, name: str, delta: dict[str, Any], **extra: Any) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": name,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None, **extra}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _logprobs(token: Token) -> dict[str, Any]:
    entry = {
        "token": token.text,
        "logprob": token.logprob,
        "bytes": list(token.piece),
        "entropy": token.entropy,
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in token.top],
    }
    return {"content": [entry]}


def build_app(engine: Engine, name: str) -> Starlette:
    """The worker's HTTP app over one engine."""

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": name, "file": engine.path.name})

    async def chat(request: Request) -> Response:
        try:
            body = ChatRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid"}}, 422)
        sampling = Sampling(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            top_logprobs=body.top_logprobs,
        )
        messages = [m.model_dump() for m in body.messages]
        try:
            n = len(engine.prompt_tokens(messages))  # refusals answer before streaming
        except Exception as exc:  # jinja's errors: the template refused these messages
            return JSONResponse({"error": {"message": str(exc), "type": "template"}}, 422)
        if n + sampling.max_tokens > engine.n_ctx:
            message = (
                f"the prompt is {n} tokens; with max_tokens {sampling.max_tokens} it exceeds"
                f" the model's context of {engine.n_ctx} tokens"
            )
            return JSONResponse({"error": {"message": message, "type": "prompt_too_long"}}, 413)
        return StreamingResponse(
            _stream(engine, name, messages, sampling), media_type="text/event-stream"
        )

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


async def _stream(
    engine: Engine, name: str, messages: list[dict[str, str]], sampling: Sampling
) -> AsyncIterator[bytes]:
    """Run the generation in a thread; hand its tokens to the event loop as SSE chunks."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Token | BaseException | None] = asyncio.Queue()
    cancel = threading.Event()
    outcome = Outcome()
    cid = f"chatcmpl-{uuid.uuid4().hex}"

    def run() -> None:
        try:
            with engine.lock:
                for token in engine.generate(messages, sampling, outcome, cancel):
                    loop.call_soon_threadsafe(queue.put_nowait, token)
        except BaseException as exc:  # handed to the stream: the client learns why
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    thread = threading.Thread(target=run, name="generate", daemon=True)
    thread.start()
    try:
        yield _chunk(cid, name, {"role": "assistant", "content": ""})
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                kind = "prompt_too_long" if isinstance(item, PromptTooLong) else "runtime"
                error = {"error": {"message": str(item), "type": kind}}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"
                return
            yield _chunk(cid, name, {"content": item.text}, logprobs=_logprobs(item))
        final = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "delta": {}, "finish_reason": outcome.finish_reason}],
            "usage": {
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
            },
            "timings": {
                "prompt_s": round(outcome.prompt_s, 4),
                "generate_s": round(outcome.generate_s, 4),
            },
        }
        yield b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"
    finally:
        cancel.set()  # a client that went away stops the generation at the next token


def main(argv: list[str] | None = None) -> None:
    """Load the model, then serve on the Unix socket until terminated."""
    parser = argparse.ArgumentParser(prog="python -m chat_runtime.worker")
    parser.add_argument("--model", type=Path, required=True, help="GGUF file")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--name", default=None, help="model name reported (default: file)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="0: all CPU cores but one")
    args = parser.parse_args(argv)
    engine = Engine(args.model, n_ctx=args.n_ctx, threads=args.threads)
    app = build_app(engine, args.name or args.model.name)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    uvicorn.run(app, uds=args.socket, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
