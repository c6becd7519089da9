"""Which floating-point format a device computes in: bf16, fp16 with loss scaling, or fp32.

bf16 has hardware units from NVIDIA compute capability 8.0 (Ampere) on. A T4 (7.5, Turing)
and older cards have none: torch may still report bf16 as "supported" there, by emulation,
which is slow at best. So the choice is by capability, not by `is_bf16_supported()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

log = logging.getLogger(__name__)
BF16_MIN_CAPABILITY = (8, 0)
_said: set[str] = set()

Capability = Callable[[int], tuple[int, int]]


@dataclass(frozen=True)
class Precision:
    """The compute format of one device, and why."""

    name: Literal["bf16", "fp16", "fp32"]
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        """The dtype models load in and 4-bit layers compute in."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]


def choose_precision(
    device: str, capability: Capability | None = None, forced: str | None = None
) -> Precision:
    """The format for `device` ("cpu", "cuda", "cuda:1"); `capability` answers the compute
    capability of a CUDA device index (torch's query by default); `forced` is
    DISTILLERY_PRECISION when it is not auto."""
    if forced and forced != "auto":
        if forced != "fp32" and not device.startswith("cuda"):
            raise ValueError(f"DISTILLERY_PRECISION={forced} needs a CUDA device; this is {device}")
        return Precision(forced, f"{forced} (DISTILLERY_PRECISION)")  # type: ignore[arg-type]
    if not device.startswith("cuda"):
        return Precision("fp32", "fp32 on CPU")
    index = torch.device(device).index or 0
    major, minor = (capability or torch.cuda.get_device_capability)(index)
    if (major, minor) >= BF16_MIN_CAPABILITY:
        return Precision("bf16", f"bf16: compute capability {major}.{minor} has bf16 units")
    return Precision(
        "fp16",
        f"fp16 with loss scaling: compute capability {major}.{minor} has no bf16 units "
        "(Turing, e.g. a T4, or older)",
    )


def device_precision(device: str) -> Precision:
    """The setting-aware choice for this device, said once per process in one log line."""
    from tasks.settings import PipelineSettings

    precision = choose_precision(device, forced=PipelineSettings.read().precision)
    if precision.reason not in _said:
        _said.add(precision.reason)
        log.info("precision on %s: %s", device, precision.reason)
    return precision
