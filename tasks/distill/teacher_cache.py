"""On-disk teacher signals, one safetensors file per record, keyed by everything they depend on."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from storage.artifact_store import ArtifactStore
from storage.layout import layout


def default_cache_root() -> Path:
    """`<data dir>/teacher_cache`."""
    return layout().teacher_cache()


@dataclass
class CacheStats:
    """Lookups answered from disk vs records that had to go through the teacher, and the time.

    `seconds` splits the signal stage's wall time into cache lookups, loading the teacher,
    its work (forward passes or generation, on the records that missed), cache writes and
    releasing its memory: on a fast teacher the fixed costs of a
    mostly-cached cycle show up here, beside the teacher's own.
    """

    hits: int = 0
    misses: int = 0
    computed: int = 0  # records actually sent through the teacher
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("lookup", "load", "teacher", "write", "release"), 0.0
        )
    )

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Add the block's wall time to `seconds[part]`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] += time.perf_counter() - started

    @contextmanager
    def timed_teacher(self) -> Iterator[None]:
        """Teacher time of a block whose callbacks also write to the cache (remote teachers)."""
        written = self.seconds["write"]
        with self.timed("teacher"):
            yield
        self.seconds["teacher"] -= self.seconds["write"] - written  # counted as writes

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: counts, hit rate, and seconds per part (`lookup_s`, ...)."""
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "computed": self.computed,
            "hit_rate": self.hits / total if total else 0.0,
            **{f"{part}_s": round(v, 4) for part, v in self.seconds.items()},
        }


@dataclass
class TeacherCache:
    """Signals of one teacher under one setting; `namespace` fixes everything but the record."""

    root: Path
    key: dict[str, Any]
    stats: CacheStats = field(default_factory=CacheStats)
    # The artifact store other hosts fill too (DISTILLERY_ARTIFACT_STORE), keyed from the data
    # dir (`teacher_cache/<namespace>/...`); None: this host's disk only.
    shared: ArtifactStore | None = None

    @classmethod
    def open(
        cls,
        *,
        kind: str,
        teacher_id: str,
        revision: str,
        tokenizer_hash: str,
        max_length: int,
        root: Path | None = None,
        **settings: Any,
    ) -> TeacherCache:
        """A cache for `kind` ("topk"|"generate") keyed by teacher, tokenizer, length, settings."""
        key = {
            "kind": kind,
            "teacher": teacher_id,
            "revision": revision,
            "tokenizer": tokenizer_hash,
            "max_length": max_length,
            **settings,
        }
        cache = cls(Path(root) if root else default_cache_root(), key)
        if root is None:  # the default cache is the one hosts share through the store
            store = ArtifactStore.from_settings(local_root=layout().data_dir)
            cache.shared = store if store.shared else None
        cache.dir.mkdir(parents=True, exist_ok=True)
        meta = cache.dir / "key.json"
        if not meta.exists():  # human-readable record of what this namespace means
            meta.write_text(json.dumps(key, indent=2, sort_keys=True))
        return cache

    @property
    def namespace(self) -> str:
        """sha256 of the key (everything except the record)."""
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def dir(self) -> Path:
        """This namespace's folder."""
        return self.root / self.namespace

    def path(self, record_hash: str) -> Path:
        """Where one record's entry lives."""
        return self.dir / record_hash[:2] / f"{record_hash}.safetensors"

    def split(self, record_hashes: list[str]) -> tuple[list[str], list[str]]:
        """(cached, missing) record hashes, counting hits and misses once per distinct record."""
        cached: list[str] = []
        missing: list[str] = []
        with self.stats.timed("lookup"):
            for h in dict.fromkeys(record_hashes):
                (cached if self.path(h).is_file() else missing).append(h)
            if missing and self.shared is not None:  # filled by another host: one listing
                fetched = self.shared.fetch_files(self.dir, [self.path(h) for h in missing])
                got = {p.name.removesuffix(".safetensors") for p in fetched}
                cached += [h for h in missing if h in got]
                missing = [h for h in missing if h not in got]
        self.stats.hits += len(cached)
        self.stats.misses += len(missing)
        return cached, missing

    def put(
        self, record_hash: str, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None
    ) -> None:
        """Write one entry atomically (temp file + rename): readers never see half a file."""
        with self.stats.timed("write"):
            self._put(record_hash, tensors, meta)

    def _put(
        self, record_hash: str, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None
    ) -> None:
        target = self.path(record_hash)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        os.close(fd)
        try:
            contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(contiguous, tmp, metadata=meta or {})
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.shared is not None:
            # Entries are determined by their key: a copy another host already sent is kept.
            self.shared.push(target, once=True)

    def get(self, record_hash: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """One entry's tensors and metadata."""
        with safe_open(str(self.path(record_hash)), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
