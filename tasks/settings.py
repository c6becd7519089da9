"""The pipeline's own settings (not the store's, not the service's): DISTILLERY_* or `.env`.

Every variable the project reads is declared in exactly one settings class:
`storage.config.StorageSettings` (where data lives), `storage.registry.config.RegistrySettings`
(where versions are published), `serving.settings.ServiceSettings` (the phone-facing
service) and `PipelineSettings` here (the tools that prepare, train and export);
docs/settings.md lists them all and a test keeps it complete.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from pydantic import Field

from storage.config import DistillerySettings, Settings, StorageSettings
from storage.registry.config import RegistrySettings

P = ParamSpec("P")
R = TypeVar("R")


class PipelineSettings(DistillerySettings):
    """How the pipeline's tools behave on this machine."""

    progress: bool = Field(True, description="progress bars with rate and ETA; 0 in scheduled logs")
    debug: bool = Field(False, description="show the traceback behind a one-line error")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "distillery",
        description="fixtures fetched once, outside the repository (llama.cpp sources, wheels)",
    )
    remote_teachers: Path | None = Field(
        None, description="TOML of remote teacher presets [<data dir>/remote_teachers.toml]"
    )
    sample_data: Path | None = Field(
        None, description="JSONL of tasks for the simulator and the fixed benchmark [built-in]"
    )
    hub_kernels: bool = Field(
        False,
        description="let transformers (on CUDA) and bitsandbytes (on import) fetch kernels from "
        "the Hub (needs network)",
    )
    decoding: Literal["continuous", "padded"] = Field(
        "continuous",
        description="greedy answers (teacher, yardstick, evaluation): continuous refills a "
        "finished answer's slot at once; padded runs each batch to its longest answer",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="compute format on CUDA; auto: bf16 from compute capability 8.0 (Ampere), "
        "fp16 with loss scaling below it (a T4), fp32 on CPU",
    )


# What a pipeline run reads: where data lives, where versions go, how the tools behave.
PIPELINE_GROUPS: tuple[type[DistillerySettings], ...] = (
    StorageSettings,
    RegistrySettings,
    PipelineSettings,
)


def with_pipeline_settings(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` (a flow) under settings read once at its start, or under its caller's.

    Every flow wears it under `@flow`: a deployment's run validates all of its settings
    before any work, and its subflows and tasks see the same frozen values.
    """

    current, groups = Settings.current, PIPELINE_GROUPS  # closed over, not looked up globally

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with current(*groups).active():
            return fn(*args, **kwargs)

    # The same code with the flow module's globals: Prefect resolves a flow's (string)
    # annotations in `fn.__globals__`, which for a plain wrapper would be this module's.
    wrapper = types.FunctionType(run.__code__, fn.__globals__, fn.__name__, None, run.__closure__)
    return functools.update_wrapper(wrapper, fn)
