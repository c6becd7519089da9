"""Distillation: pair preflight, cached teacher signals, LoRA training with a KD loss."""

from __future__ import annotations

from typing import Any

__all__ = ["distill"]


def __getattr__(name: str) -> Any:
    # Lazy: `tasks.distill.config` stays importable without pulling in torch/TRL.
    if name == "distill":
        from tasks.distill.engine import distill

        return distill
    raise AttributeError(f"module 'tasks.distill' has no attribute {name!r}")
