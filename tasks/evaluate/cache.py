"""Per-set result cache: a model's scores on a set are computed once per model + set + settings.

The teacher, the base student and a stable version that was scored as a candidate do not
change between cycles, and most eval sets do not either (earlier test splits, the fixed
benchmark): on 2 CPU cores re-scoring them every cycle would cost more than the new split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import transformers

from storage.layout import layout
from tasks.evaluate.sets import conversation

# Files whose change alters the numbers: a new version of them must not reuse old scores.
SCORING_SOURCES = ("run.py", "model_metrics.py", "text_metrics.py", "uncertainty.py", "sets.py")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def default_cache_dir() -> Path:
    """<data dir>/eval/cache: per-set results keyed by what produced them."""
    return layout().eval_cache()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scoring_version() -> str:
    """A hash of the scoring code and the libraries that compute the numbers."""
    here = Path(__file__).parent
    digest = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    for name in SCORING_SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()[:16]


def model_identity(preset: str, adapter_dir: str | None) -> str:
    """The preset, its revision, and the adapter's weights by content (not by folder name)."""
    from tasks.models.presets import get_preset

    p = get_preset(preset)
    ident = f"{p.name}@{p.revision}"
    if adapter_dir:
        files = sorted(
            f
            for f in Path(adapter_dir).iterdir()
            if f.suffix in WEIGHT_SUFFIXES or f.name == "adapter_config.json"
        )
        ident += "+lora:" + _sha(b"".join(_sha(f.read_bytes()).encode() for f in files))[:16]
    return ident


def set_fingerprint(dataset: Any, limit: int | None) -> str:
    """A hash of the prompts and reference answers that would be scored."""
    n = min(len(dataset), limit or len(dataset))
    digest = hashlib.sha256()
    for i in range(n):
        digest.update(json.dumps(conversation(dataset[i]), sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def cache_key(model: str, fingerprint: str, config: Any, device: str) -> str:
    """The file name under which one model's scores on one set are kept."""
    settings = json.dumps(asdict(config), sort_keys=True)
    parts = f"{model}\n{fingerprint}\n{settings}\n{device}\n{scoring_version()}"
    return _sha(parts.encode())


class ResultCache:
    """JSON files under one folder; a damaged file counts as a miss and is rewritten."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root else None

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached per-set result, or None."""
        if self.root is None:
            return None
        path = self.root / f"{key}.json"
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Write atomically (rename), so a reader never sees half a file."""
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.tmp"
        tmp.write_text(json.dumps(value))
        tmp.replace(self.root / f"{key}.json")


def weight_file_bytes(preset: str) -> int:
    """Bytes of the preset's weight files as stored (safetensors first, else .bin, else GGUF).

    A merged LoRA adds no bytes, so this is also the size of a version built on the preset.
    """
    from tasks.models.load import materialize_preset

    root = materialize_preset(preset)
    files = [f for f in root.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES]
    for suffix in WEIGHT_SUFFIXES:  # repositories often ship one format twice: count one
        chosen = [f for f in files if f.suffix == suffix]
        if chosen:
            return sum(f.stat().st_size for f in chosen)
    raise FileNotFoundError(f"no weight files under {root} for preset {preset!r}")
