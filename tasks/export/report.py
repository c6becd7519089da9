"""What an export produced: the files to publish, every parity result, what was skipped."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.registry.types import FileSpec

if TYPE_CHECKING:  # types only: this module is read by the cycle without loading torch
    from tasks.export.adapter_parity import AdapterParity
    from tasks.export.files import GGUFFile
    from tasks.export.llama_cpp import Skipped
    from tasks.export.parity import ParityResult


@dataclass
class ExportReport:
    """What an export produced: publishable files, every parity result, and what was skipped."""

    merged_dir: Path
    files: list[GGUFFile] = field(default_factory=list)
    parity: list[ParityResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    phone_file: str | None = None  # quantization chosen for phones, when PHONE was asked for
    phone_reason: str = ""
    # adapter_gguf=True: the base GGUF and the GGUF adapter (with role and meta), the
    # adapter path's parity, or why they were not written.
    delta_files: list[FileSpec] = field(default_factory=list)
    adapter_parity: list[AdapterParity] = field(default_factory=list)
    adapter_reason: str = ""

    def publishable(self) -> list[GGUFFile | FileSpec]:
        """Everything to publish: the merged files, then base and adapter (when written)."""
        return [*self.files, *self.delta_files]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, small enough to pass between Prefect tasks.

        `files` lists everything to publish: the merged files, then base and adapter.
        """
        out = asdict(self)
        out["merged_dir"] = str(self.merged_dir)
        out["files"] += out.pop("delta_files")
        for item in out["files"]:
            item["path"] = str(item["path"])
        return out
