"""The pipeline's own settings (not the store's, not the service's): DISTILLERY_* or `.env`.

Every variable the project reads is declared in exactly one settings class:
`storage.config.StorageSettings` (where data lives), `storage.registry.config.RegistrySettings`
(where versions are published), `serving.settings.ServiceSettings` (the phone-facing
service) and `PipelineSettings` here (the tools that prepare, train and export);
docs/settings.md lists them all and a test keeps it complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from storage.config import DistillerySettings


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
