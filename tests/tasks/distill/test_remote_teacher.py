"""Remote teachers against a live loopback server (llama-cpp-python's, on the SmolLM2 GGUF)."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from safetensors import safe_open
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage.db import Database
from storage.repo.runs import get_run
from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill, prepare_signals
from tasks.distill.preflight import StrategyError
from tasks.distill.remote import topk_from_prompt_logprobs
from tasks.distill.remote_client import RemoteClient, RemoteTeacherError, TokenBudget
from tasks.models.remote import (
    REMOTE_FILE_ENV,
    RemotePresetError,
    RemoteTeacher,
    load_remote_teachers,
    remote_teacher_names,
)
from tests.remote_server import Loopback, free_port, llama_server, server_missing_reason
from tests.remote_server import write_remote_teachers as write_file
from tests.tasks.distill.snapshots import save_snapshot, seed_records

needs_server = pytest.mark.skipif(
    server_missing_reason() is not None, reason=str(server_missing_reason())
)
FAST = {"max_steps": 2, "save_steps": 100, "logging_steps": 1, "per_device_batch_size": 4}


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    reason = server_missing_reason()
    if reason:
        pytest.skip(reason)
    with llama_server() as server:
        yield server


def remote_preset(server: Loopback, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": server.base_url,
        "model": server.model,
        "server": "llama_cpp",
        "api_key_env": "LOOPBACK_KEY",
        **extra,
    }


@pytest.fixture
def teachers_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback: Loopback) -> Path:
    monkeypatch.setenv("LOOPBACK_KEY", loopback.api_key)
    path = write_file(tmp_path / "remote.toml", **{"smollm2-remote": remote_preset(loopback)})
    monkeypatch.setenv(REMOTE_FILE_ENV, str(path))
    return path


def direct_answer(server: Loopback, prompt: str, max_tokens: int) -> str:
    """What the server says to `prompt`, asked without any of our code."""
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "seed": 0,
    }
    headers = {"Authorization": f"Bearer {server.api_key}"}
    r = httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=120)
    r.raise_for_status()
    return str(r.json()["choices"][0]["message"]["content"]).strip()


def test_preset_file_refuses_keys_and_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[teachers.a]\nbase_url = "http://x/v1"\nmodel = "m"\napi_key = "sk-123"\n')
    with pytest.raises(RemotePresetError, match="keys never go in the preset file"):
        load_remote_teachers(path)
    path.write_text('[teachers.a]\nbase_url = "http://x/v1"\nmodel = "m"\nmodle = "m"\n')
    with pytest.raises(RemotePresetError, match="unknown fields \\['modle'\\]"):
        load_remote_teachers(path)
    path.write_text('[teachers.a]\nbase_url = "http://x/v1"\nmodel = "m"\nserver = "vllm"\n')
    teacher = load_remote_teachers(path)["a"]
    assert teacher.has_prompt_logprobs and teacher.tokens_per_hour == 30_000


def test_a_remote_teacher_is_a_cycle_teacher_without_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from tasks.config import CycleConfig
    from tasks.teacher import resolve_teacher

    far = {"base_url": "https://example.invalid/v1", "model": "m", "server": "tgi"}
    monkeypatch.setenv(REMOTE_FILE_ENV, str(write_file(tmp_path / "t.toml", far=far)))
    assert CycleConfig(teacher="far").teacher == "far"
    with pytest.raises(ValidationError, match="unknown model preset 'gpt-5'"):
        CycleConfig(teacher="gpt-5")
    choice = resolve_teacher("far", True)  # a remote teacher never loads our LoRA
    assert (choice.preset, choice.adapter_dir, choice.label) == ("far", None, "far")
    assert remote_teacher_names() == ["far"]  # the CLI's teacher choices add these


def test_vllm_prompt_logprobs_become_cache_rows() -> None:
    # Token 0 has no entry; tokens 1-2 are prompt, 3-4 the answer (labels), k = 2.
    lp = {"7": {"logprob": math.log(0.5), "rank": 1}, "9": {"logprob": math.log(0.3), "rank": 2}}
    extra = {**lp, "4": {"logprob": math.log(0.01), "rank": 40}}  # the actual token, off top-k
    entries = [None, lp, lp, extra, lp]
    labels = [-100, -100, -100, 4, 9]
    exact = topk_from_prompt_logprobs(entries, labels, 2, 1.0, vocab_size=100)
    assert exact["ids"].tolist() == [[7, 9], [7, 9]]
    assert torch.allclose(exact["logprobs"].exp(), torch.tensor([[0.5, 0.3]] * 2))
    assert torch.allclose(exact["tail"], torch.tensor([0.2, 0.2]))
    warm = topk_from_prompt_logprobs(entries, labels, 2, 2.0, vocab_size=100)
    total = warm["logprobs"].exp().sum(-1) + warm["tail"]
    assert torch.allclose(total, torch.ones(2), atol=1e-6)
    # T = 2 flattens: the top pair's ratio is the square root of theirs, and the tail (taken
    # as flat over the other 98 tokens) grows to sqrt(0.2 * 98) over the new normaliser.
    ratio = (warm["logprobs"][0, 0] - warm["logprobs"][0, 1]).exp()
    assert math.isclose(float(ratio), math.sqrt(0.5 / 0.3), rel_tol=1e-5)
    z = math.sqrt(0.5) + math.sqrt(0.3) + math.sqrt(0.2 * 98)
    assert math.isclose(float(warm["tail"][0]), math.sqrt(0.2 * 98) / z, rel_tol=1e-5)


@needs_server
def test_teacher_stage_takes_its_answers_from_the_loopback_server(
    teachers_file: Path, loopback: Loopback, sqlite_db: Database, tmp_path: Path
) -> None:
    records = seed_records(5)
    snap = save_snapshot(tmp_path / "snap", records, seed_records(2, offset=150))
    cfg = DistillConfig(max_length=128, gen_max_new_tokens=16, **FAST)
    res = distill(
        snap,
        teacher="smollm2-remote",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=cfg,
        db=sqlite_db,
        cache_root=tmp_path / "cache",
    )
    assert res.strategy == "sequence"
    assert "remote llama_cpp" in res.metrics["strategy_reason"]
    assert res.metrics["teacher_cache"]["computed"] == 5
    # The time is split for a remote teacher too: its answers, and the cache writes.
    spent = res.metrics["teacher_cache"]
    assert spent["teacher_s"] > spent["write_s"] > 0
    with sqlite_db.transaction() as session:
        assert get_run(session=session, run_id=res.run_id).status == "succeeded"

    entries = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(entries) == 5
    stored = {}
    for path in entries:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        assert meta["source"] == f"remote:{loopback.base_url}"
        assert meta["model"] == loopback.model
        stored[path.stem] = meta["text"]
    # The cached answers are the server's own: the same prompt asked directly, word for word.
    from tasks.distill.data import record_hash

    for messages in records[:2]:
        h = record_hash(messages[:-1])
        assert stored[h] == direct_answer(loopback, messages[0]["content"], 16)
        assert stored[h] != messages[-1]["content"]  # not the snapshot's reference answer

    # A second cycle with one new record asks the server once.
    more = save_snapshot(tmp_path / "snap2", seed_records(6), seed_records(2, offset=150))
    again = prepare_signals(
        more,
        teacher="smollm2-remote",
        student="tiny-llama-student",
        strategy="sequence",
        config=cfg,
        work_dir=tmp_path / "w2",
        cache_root=tmp_path / "cache",
    )
    assert again["teacher_cache"]["computed"] == 1 and again["teacher_cache"]["hits"] == 5


@needs_server
def test_logit_strategies_are_refused_for_a_server_without_prompt_logprobs(
    teachers_file: Path, tmp_path: Path
) -> None:
    snap = save_snapshot(tmp_path / "snap", seed_records(2), seed_records(1, offset=150))
    with pytest.raises(StrategyError, match="gives no prompt log-probs"):
        distill(
            snap,
            teacher="smollm2-remote",
            student="tiny-llama-student",
            output_dir=tmp_path / "out",
            config=DistillConfig(strategy="logit", **FAST),
        )


@needs_server
def test_the_key_comes_from_the_environment_and_a_wrong_one_is_refused(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = RemoteTeacher("k", loopback.base_url, loopback.model, api_key_env="LOOPBACK_KEY")
    monkeypatch.delenv("LOOPBACK_KEY", raising=False)
    with pytest.raises(RemotePresetError, match="set LOOPBACK_KEY"):
        RemoteClient(teacher)
    monkeypatch.setenv("LOOPBACK_KEY", "wrong")
    with pytest.raises(RemoteTeacherError, match="answered 401"):
        RemoteClient(teacher).chat([[{"role": "user", "content": "Hi"}]], 4, lambda i, a: None)


@needs_server
def test_budget_hit_pauses_then_resumes_with_every_answer(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOOPBACK_KEY", loopback.api_key)
    teacher = RemoteTeacher(
        "budgeted", loopback.base_url, loopback.model, api_key_env="LOOPBACK_KEY", concurrency=4
    )
    prompts = [[{"role": "user", "content": f"Name a colour. ({i})"}] for i in range(3)]
    # Each call's estimate (~21 tokens) is over half the budget: the calls reserved together
    # cannot all fit, so the second waits for the window (2 s here instead of an hour).
    budget = TokenBudget(30, window_s=2.0, label="budgeted")
    answers: dict[int, str] = {}
    with caplog.at_level(logging.WARNING, logger="tasks.distill.remote_client"):
        RemoteClient(teacher, budget=budget).chat(
            prompts, 8, lambda i, a: answers.__setitem__(i, a.text)
        )
    assert sorted(answers) == [0, 1, 2] and all(answers.values())
    assert budget.pauses >= 2
    assert any("pausing" in r.message and "resuming at" in r.message for r in caplog.records)


class Flaky:
    """A proxy that fails the first calls (503, then 429 with Retry-After), then forwards."""

    def __init__(self, upstream: str, failures: list[int]) -> None:
        self.upstream, self.failures, self.seen = upstream, list(failures), 0
        self.in_flight = self.most_in_flight = 0

    async def handle(self, request: Request) -> Response:
        self.seen += 1
        if self.failures:
            status = self.failures.pop(0)
            return Response("busy", status_code=status, headers={"retry-after": "0"})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.forward(request)
        finally:
            self.in_flight -= 1

    async def forward(self, request: Request) -> Response:
        async with httpx.AsyncClient(timeout=120) as client:
            upstream = await client.post(
                f"{self.upstream}/{request.path_params['path']}",
                content=await request.body(),
                headers={
                    "authorization": request.headers.get("authorization", ""),
                    "content-type": "application/json",
                },
            )
        return Response(upstream.content, upstream.status_code, media_type="application/json")


@needs_server
def test_5xx_429_and_connection_errors_are_retried(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPBACK_KEY", loopback.api_key)
    flaky = Flaky(loopback.base_url, [503, 502, 429])
    app = Starlette(routes=[Route("/v1/{path:path}", flaky.handle, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        teacher = RemoteTeacher(
            "flaky", f"http://127.0.0.1:{port}/v1", loopback.model, api_key_env="LOOPBACK_KEY"
        )
        client = RemoteClient(teacher, backoff_s=0.05)
        got: list[str] = []
        client.chat([[{"role": "user", "content": "Hi"}]], 4, lambda i, a: got.append(a.text))
        assert got and client.retries == 3 and flaky.seen == 4
        # Concurrency is bounded: six prompts, never more than two calls at the server.
        pair = RemoteClient(dataclasses.replace(teacher, concurrency=2))
        prompts = [[{"role": "user", "content": f"Count to {i}."}] for i in range(6)]
        pair.chat(prompts, 4, lambda i, a: got.append(a.text))
        assert len(got) == 7 and flaky.most_in_flight == 2
    finally:
        server.should_exit = True
        thread.join()
    # Nothing listens there any more: every attempt is retried, then the error is raised.
    gone = RemoteClient(
        RemoteTeacher("gone", teacher.base_url, loopback.model, max_attempts=3), backoff_s=0.05
    )
    with pytest.raises(httpx.ConnectError):
        gone.chat([[{"role": "user", "content": "Hi"}]], 4, lambda i, a: None)
    assert gone.retries == 2
