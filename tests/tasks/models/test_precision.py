"""The compute format follows the card's capability (faked here), not bf16 emulation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tasks.distill.config import DistillConfig
from tasks.distill.train import sft_args
from tasks.models.precision import choose_precision, device_precision


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((6, 1), "fp16"), ((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 9), "bf16"),
     ((9, 0), "bf16"), ((10, 0), "bf16")],
)  # fmt: skip
def test_cuda_precision_by_capability(capability: tuple[int, int], expected: str) -> None:
    asked: list[int] = []

    def query(index: int) -> tuple[int, int]:
        asked.append(index)
        return capability

    precision = choose_precision("cuda:1", capability=query)
    assert precision.name == expected and asked == [1]
    assert precision.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]
    assert f"{capability[0]}.{capability[1]}" in precision.reason


def test_cpu_is_fp32_without_asking_a_gpu() -> None:
    def query(index: int) -> tuple[int, int]:
        raise AssertionError("a CPU run must not query CUDA")

    precision = choose_precision("cpu", capability=query)
    assert (precision.name, precision.dtype) == ("fp32", torch.float32)


def test_the_setting_overrides_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_precision("cuda", capability=lambda i: (9, 0), forced="fp16").name == "fp16"
    assert choose_precision("cpu", forced="fp32").name == "fp32"
    with pytest.raises(ValueError, match="DISTILLERY_PRECISION=bf16 needs a CUDA device"):
        choose_precision("cpu", forced="bf16")
    # What loading and training ask: the setting and torch's own capability query.
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (7, 5))
    assert device_precision("cuda").name == "fp16"  # a T4: no bf16 units
    monkeypatch.setenv("DISTILLERY_PRECISION", "fp32")
    assert device_precision("cuda").name == "fp32"


def test_trainer_arguments_on_a_t4_scale_the_loss_in_fp16(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # (bf16 arguments cannot be built here: transformers checks for bf16 hardware itself.)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (7, 5))
    args = sft_args(DistillConfig(), "tiny-llama-student", tmp_path, "cuda")
    assert (args.fp16, args.bf16) == (True, False)
    cpu = sft_args(DistillConfig(), "tiny-llama-student", tmp_path, "cpu")
    assert (cpu.fp16, cpu.bf16) == (False, False)
