"""Logit signals from a live vLLM server (prompt_logprobs) match the same teacher run locally."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from datasets import load_from_disk

from tasks.distill.config import DistillConfig
from tasks.distill.engine import prepare_signals
from tasks.distill.signals import topk_of_batch
from tasks.models.load import load_model_and_tokenizer, materialize_preset
from tasks.models.remote import REMOTE_FILE_ENV
from tests.remote_server import free_port, write_remote_teachers
from tests.tasks.distill.snapshots import save_snapshot, seed_records

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm installed"),
]
TEACHER = "smollm2-135m-instruct"
SERVED = "smollm2-vllm"


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI-compatible server on the materialized SmolLM2 weights (fp32)."""
    model_dir = materialize_preset(TEACHER)
    port = free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    cmd += ["--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max-logprobs", "20", "--dtype", "float32", "--max-model-len", "1024"]
    cmd += ["--gpu-memory-utilization", "0.3", "--api-key", "vllm-key"]
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vLLM did not start: {log.read_text()[-3000:]}")
            time.sleep(2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_vllm_prompt_logprobs_fill_the_cache_like_the_local_teacher(
    vllm_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = {
        "base_url": vllm_server,
        "model": SERVED,
        "server": "vllm",
        "tokenizer": TEACHER,
        "api_key_env": "VLLM_KEY",
        "max_logprobs": 20,
    }
    monkeypatch.setenv("VLLM_KEY", "vllm-key")
    path = write_remote_teachers(tmp_path / "remote.toml", **{"smollm2-vllm": preset})
    monkeypatch.setenv(REMOTE_FILE_ENV, str(path))
    snap = save_snapshot(tmp_path / "snap", seed_records(8), seed_records(2, offset=150))
    cfg = DistillConfig(strategy="logit", top_k=8, temperature=1.0, max_length=128, device="cuda")
    out = prepare_signals(
        snap,
        teacher="smollm2-vllm",
        student="smollm2-pruned-student",  # SmolLM2's tokenizer: same-vocabulary logit KD
        strategy="logit",
        config=cfg,
        work_dir=tmp_path / "w",
        cache_root=tmp_path / "cache",
    )
    assert out["teacher_cache"]["computed"] == out["train_records"] == 8
    train = load_from_disk(out["prepared_dir"])["train"]

    # The same rows through the same weights locally, at the same temperature.
    model, tok = load_model_and_tokenizer(TEACHER, device="cuda", quantize_4bit=False)
    agree, diffs = 0, []
    for row in train:
        batch = {
            "input_ids": torch.tensor([row["input_ids"]]),
            "attention_mask": torch.ones(1, len(row["input_ids"]), dtype=torch.long),
            "labels": torch.tensor([row["labels"]]),
        }
        local = topk_of_batch(model, batch, 8, 1.0)[0]
        remote_ids = torch.tensor(row["t_ids"])
        remote_lp = torch.tensor(row["t_logprobs"])
        assert remote_ids.shape == local["ids"].shape
        agree += int((remote_ids[:, 0] == local["ids"][:, 0].cpu()).sum())
        diffs.append((remote_lp[:, 0] - local["logprobs"][:, 0].cpu()).abs())
    n = sum(len(d) for d in diffs)
    # Different kernels (vLLM's attention vs eager/SDPA) round differently: near-ties may swap.
    assert agree / n >= 0.95, f"top-1 agreement {agree}/{n}"
    assert torch.cat(diffs).mean() < 0.05
    # A second pass over the same data asks the server nothing.
    again = prepare_signals(
        snap,
        teacher="smollm2-vllm",
        student="smollm2-pruned-student",
        strategy="logit",
        config=cfg,
        work_dir=tmp_path / "w2",
        cache_root=tmp_path / "cache",
    )
    assert again["teacher_cache"]["computed"] == 0
