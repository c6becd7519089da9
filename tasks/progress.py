"""Progress bars for the long steps (teacher signals, training, evaluation, export, uploads).

One tqdm bar per step with its rate and ETA, on stderr, so a person at a terminal sees the
work move. `DISTILLERY_PROGRESS=0` (or TQDM_DISABLE) turns them off, e.g. in scheduled runs
whose logs should hold only the stage lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm
from transformers import TrainerCallback

from tasks.settings import PipelineSettings

T = TypeVar("T")


def bars_enabled() -> bool:
    """False when $DISTILLERY_PROGRESS is 0/false (bars are on by default)."""
    return PipelineSettings.read().progress


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """`iterable` wrapped in a bar named `desc` (rate and ETA), unless bars are off."""
    yield from tqdm(
        iterable, desc=desc, total=total, unit=unit, disable=not bars_enabled(), dynamic_ncols=True
    )


def bar(*, desc: str, total: int | None, unit: str = "it") -> Any:
    """A manual bar (call `.update(n)`, close it or use it as a context manager)."""
    return tqdm(desc=desc, total=total, unit=unit, disable=not bars_enabled(), dynamic_ncols=True)


class TrainingBar(TrainerCallback):
    """A step bar with the latest loss and learning rate, instead of the trainer's raw dicts."""

    def __init__(self, desc: str = "training") -> None:
        self.desc = desc
        self._bar: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._bar = bar(desc=self.desc, total=state.max_steps, unit="step")
            self._bar.update(state.global_step)  # a resumed run starts part-way

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.update(state.global_step - self._bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if self._bar is not None and logs:
            shown = {k: f"{v:.3g}" for k, v in logs.items() if k in ("loss", "learning_rate")}
            if shown:
                self._bar.set_postfix(shown, refresh=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
