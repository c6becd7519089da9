"""The teacher cache shared by hosts through the artifact store: filled once, never torn."""

from __future__ import annotations

import threading
from pathlib import Path

import fsspec
import pytest
import torch
from safetensors.torch import load_file

from storage.artifact_store import ArtifactStore
from tasks.distill.teacher_cache import TeacherCache

KEY = {"kind": "topk", "teacher": "t", "revision": "r", "tokenizer": "h", "max_length": 64}
HASHES = [f"{i:02x}" + "ab" * 31 for i in range(24)]


def _signal(record: str) -> dict[str, torch.Tensor]:
    """What the teacher would compute for a record: fixed by the record, as real signals are."""
    seed = int(record[:2], 16)
    return {"ids": torch.arange(seed, seed + 8, dtype=torch.int32), "lp": torch.full((8,), -seed)}


def _host(tmp_path: Path, name: str, url: str) -> TeacherCache:
    data_dir = (tmp_path / name).resolve()
    store = ArtifactStore(local_root=data_dir, url=url)
    return TeacherCache(data_dir / "teacher_cache", dict(KEY), shared=store)


def test_two_hosts_filling_the_same_records_at_once_leave_one_whole_copy_each(
    s3_store: str, tmp_path: Path
) -> None:
    hosts = [_host(tmp_path, name, s3_store) for name in ("a", "b")]
    both_looked = threading.Barrier(2)
    errors: list[BaseException] = []

    def fill(cache: TeacherCache) -> None:
        try:
            _, missing = cache.split(HASHES)
            assert missing == HASHES  # neither host has anything yet
            both_looked.wait(timeout=30)  # both compute the same records, then write at once
            for record in missing:
                cache.put(record, _signal(record), {"record": record})
        except BaseException as exc:  # surfaced below: a thread's assert would vanish
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    # The store holds one entry per record, each a whole safetensors file with the signal.
    fs, base = fsspec.core.url_to_fs(s3_store)
    stored = sorted(p for p in fs.find(f"{base}/teacher_cache") if p.endswith(".safetensors"))
    assert len(stored) == len(HASHES)
    third = _host(tmp_path, "c", s3_store)
    cached, missing = third.split(HASHES)  # a third host computes nothing
    assert (sorted(cached), missing) == (sorted(HASHES), [])
    assert third.stats.hits == len(HASHES) and third.stats.misses == 0
    for record in HASHES:
        tensors = load_file(str(third.path(record)))
        expected = _signal(record)
        assert all(torch.equal(tensors[k], expected[k]) for k in expected)
        assert not list(third.path(record).parent.glob(".fetch-*"))  # no partial file left


def test_the_default_cache_is_shared_when_a_store_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DISTILLERY_ARTIFACT_STORE", raising=False)
    alone = TeacherCache.open(kind="topk", teacher_id="t", revision="r", tokenizer_hash="h",
                              max_length=64)  # fmt: skip
    assert alone.shared is None
    monkeypatch.setenv("DISTILLERY_ARTIFACT_STORE", f"file://{tmp_path / 'shared'}")
    cache = TeacherCache.open(kind="topk", teacher_id="t", revision="r", tokenizer_hash="h",
                              max_length=64)  # fmt: skip
    assert cache.shared is not None
    cache.put(HASHES[0], _signal(HASHES[0]))
    assert (tmp_path / "shared" / "teacher_cache" / cache.namespace).is_dir()
