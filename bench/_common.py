"""Shared bench helpers: live servers in subprocesses, a lean HTTP/1.1 load client, JSON lines.

The load client writes pre-built requests on keep-alive connections with asyncio streams,
so the client itself costs little CPU next to the server it measures (both share the box).
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPO_ROOT = Path(__file__).resolve().parents[1]


def emit(**fields: Any) -> None:
    """Print one JSON line of results."""
    print(json.dumps(fields), flush=True)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_server_pids: dict[str, int] = {}


def server_cpu_s(base_url: str) -> float | None:
    """CPU seconds (user + system) the server at `base_url` has used; None off Linux.

    Less noisy than throughput on a shared 2-core box: it counts only the server's own work.
    """
    try:
        fields = Path(f"/proc/{_server_pids[base_url]}/stat").read_text().rsplit(")", 1)[1]
    except (KeyError, OSError):
        return None
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(target: str, env: dict[str, str] | None = None, http: str = "auto") -> Iterator[str]:
    """Run `distillery` (the real app) or `bare` (bench/_common.py:bare_app) under uvicorn.

    `http` is uvicorn's HTTP parser: auto (httptools when installed), h11 or httptools.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--http", http, "--loop", "asyncio" if http == "h11" else "auto"]
    cmd += ["--log-level", "warning", "--no-access-log"]
    if target == "distillery":
        cmd += ["--factory", "serving.app:create_app"]
    else:
        cmd += ["--app-dir", str(REPO_ROOT / "bench"), "_common:bare_app"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} server did not start") from None
                time.sleep(0.2)
        _server_pids[base] = proc.pid
        yield base
    finally:
        _server_pids.pop(base, None)
        proc.terminate()
        proc.wait(timeout=15)


def raw_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 keep-alive request as bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        chunks = []
        while size := int((await reader.readline()).strip(), 16):
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        return status, b"".join(chunks)
    return status, b""


async def _load(
    port: int, requests: list[bytes], concurrency: int
) -> list[tuple[float, int, bytes]]:
    queue = list(reversed(requests))
    out: list[tuple[float, int, bytes]] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            request = queue.pop()
            start = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            out.append((time.perf_counter() - start, status, body))
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def _load_process(
    port: int, requests: list[bytes], concurrency: int, barrier: Any
) -> tuple[float, float, list[tuple[float, int, bytes]]]:
    gc.disable()  # collector pauses would land in the latencies we measure
    barrier.wait()
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes on Linux
    results = asyncio.run(_load(port, requests, concurrency))
    return start, time.perf_counter(), results


def run_load(
    base_url: str, requests: list[bytes], concurrency: int, processes: int | None = None
) -> dict[str, Any]:
    """Send every request over `concurrency` connections spread over client processes.

    Several client processes keep the load generator from being the bottleneck: the
    server under test runs in one process, so it should be the first to saturate.
    """
    port = int(base_url.rsplit(":", 1)[1])
    processes = processes or max(1, min(4, (os.cpu_count() or 2) - 2, concurrency))
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Manager().Barrier(processes)
    slices = [requests[i::processes] for i in range(processes)]
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [
            pool.submit(_load_process, port, part, share, barrier)
            for part, share in zip(slices, shares, strict=True)
        ]
        outs = [f.result() for f in futures]
    wall = max(o[1] for o in outs) - min(o[0] for o in outs)
    results = [r for o in outs for r in o[2]]
    latencies = sorted(r[0] for r in results)
    return {
        "wall_s": wall,
        "requests": len(results),
        "client_processes": processes,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "statuses": sorted({r[1] for r in results}),
        "bodies": [r[2] for r in results],
    }


# --- the bare baseline: Starlette doing only what the endpoint cannot avoid -------------------

_MANIFEST = Path(os.environ.get("BENCH_BARE_MANIFEST", "/nonexistent"))


async def _bare_feedback(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(
        orjson.dumps({"received": len(body["interactions"])}), media_type="application/json"
    )


async def _bare_manifest(_request: Request) -> Response:
    return Response(_MANIFEST_BYTES, media_type="application/json")


async def _bare_health(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


_MANIFEST_BYTES = _MANIFEST.read_bytes() if _MANIFEST.is_file() else b'{"models":[]}'

bare_app = Starlette(
    routes=[
        Route("/api/training/feedback", _bare_feedback, methods=["POST"]),
        Route("/api/models/mobile/latest", _bare_manifest),
        Route("/api/health", _bare_health),
    ]
)
