"""A trainer callback timing each optimizer step, synchronised with the device."""

from __future__ import annotations

import time
from typing import Any

from _generation import sync
from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall-clock time of each optimizer step."""

    def __init__(self, device: str) -> None:
        self.device, self.times, self._t = device, [], 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync(self.device)
        self._t = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync(self.device)
        self.times.append(time.perf_counter() - self._t)
