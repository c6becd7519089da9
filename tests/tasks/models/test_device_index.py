"""Which CUDA device a model loads onto: the explicit index, else this rank's LOCAL_RANK."""

from __future__ import annotations

import pytest

from tasks.models.load import cuda_device_index


def test_plain_cuda_goes_to_this_ranks_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    # `accelerate launch` / torchrun set LOCAL_RANK per process: rank 1 must not load on GPU 0.
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cuda_device_index("cuda") == 1
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert cuda_device_index("cuda") == 3


def test_explicit_index_wins_over_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cuda_device_index("cuda:0") == 0
    assert cuda_device_index("cuda:2") == 2


def test_single_process_uses_gpu_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert cuda_device_index("cuda") == 0
