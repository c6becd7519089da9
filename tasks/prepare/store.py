"""Snapshot files: pass two (group cap) into a DatasetDict saved atomically, and reading back."""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, DatasetInfo, Features, NamedSplit, load_from_disk
from datasets.table import MemoryMappedTable

from tasks.prepare.columns import FEATURES, NEGATIVE_FEATURES, StreamWriter
from tasks.prepare.config import SPLITS
from tasks.prepare.records import SPLIT_PRIORITY, hash_key

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def write_snapshot(
    work: Path, final: Path, thresholds: dict[str, int] | None, manifest: dict[str, Any]
) -> dict[str, int]:
    """Cap the staged splits, save them and the negatives, write the manifest, move into place.

    Returns the split sizes. Saving goes to a temp dir renamed onto `final`, so a snapshot
    directory is either complete or absent.
    """
    fingerprint = manifest["fingerprint"]
    splits: dict[str, Dataset] = {}
    for split in SPLITS:
        path = _apply_cap(work / f"staged-{split}.arrow", work / f"{split}.arrow", thresholds)
        splits[split] = _mapped(path, FEATURES, split, fingerprint)
    sizes = {split: ds.num_rows for split, ds in splits.items()}
    stats = manifest.setdefault("filter_stats", {})
    stats["records"] = sum(sizes.values())
    stats["capped"] = stats.get("kept_before_cap", 0) - stats["records"]
    negatives = _mapped(work / "negatives.arrow", NEGATIVE_FEATURES, "negatives", fingerprint)
    staging = final.parent / f".tmp-{fingerprint[:16]}-{uuid.uuid4().hex[:8]}"
    bars_were_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a bar per split only clutters flow logs
    try:
        shards = {split: _shards(ds) for split, ds in splits.items()}
        DatasetDict(splits).save_to_disk(str(staging), num_shards=shards)
        negatives.save_to_disk(str(staging / "negatives"), num_shards=_shards(negatives))
        manifest.update(split_sizes=sizes, negatives=negatives.num_rows)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # only losing a race to the same build is fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if bars_were_on:
            datasets.enable_progress_bars()
    return sizes


def _shards(dataset: Dataset) -> int:
    """datasets' own shard count (500 MB each) but at least one: an empty split then loads."""
    return max(1, min(dataset.num_rows, dataset.data.nbytes // (500 << 20) + 1))


def _apply_cap(staged: Path, out: Path, thresholds: dict[str, int] | None) -> Path:
    """Copy staged records whose seeded rank is within their group's cap, minus helper columns."""
    writer = StreamWriter(out, FEATURES.arrow_schema)
    with pa.memory_map(str(staged)) as source:
        for batch in pa.ipc.open_stream(source):
            if thresholds is not None:
                limits = pa.array(
                    [thresholds[g] for g in batch.column("_group").to_pylist()], pa.uint64()
                )
                batch = batch.filter(pc.less_equal(batch.column("_rank"), limits))
            table = pa.Table.from_batches([batch]).select(FEATURES.arrow_schema.names)
            for part in table.cast(FEATURES.arrow_schema).to_batches():
                writer.write_batch(part)
    writer.close()
    return out


def _mapped(path: Path, features: Features, split: str, fingerprint: str) -> Dataset:
    """A memory-mapped Dataset over an Arrow stream file with a fixed (reproducible) fingerprint."""
    return Dataset(
        MemoryMappedTable.from_file(str(path)),
        info=DatasetInfo(features=features),
        split=NamedSplit(split),
        fingerprint=f"{fingerprint[:32]}-{split}",
    )


def load_snapshot(path: Path | str) -> DatasetDict:
    """The train/validation/test DatasetDict of a snapshot directory."""
    loaded = load_from_disk(str(path))
    if not isinstance(loaded, DatasetDict):
        raise ValueError(f"{path} holds a single Dataset, not a snapshot DatasetDict")
    return loaded


def load_negatives(path: Path | str) -> Dataset:
    """The low-rated uncorrected responses kept beside a snapshot (for preference training)."""
    return load_from_disk(str(Path(path) / "negatives"))


def read_manifest(path: Path | str) -> dict[str, Any]:
    """A snapshot's manifest.json."""
    return json.loads((Path(path) / MANIFEST).read_text())


def carried_splits(snapshot_dirs: list[Path]) -> dict[int, str]:
    """Prompt-hash key -> split given by earlier snapshots; test wins over the others."""
    carried: dict[int, str] = {}
    for path in snapshot_dirs:
        if not (path / "dataset_dict.json").is_file():
            log.warning("earlier snapshot %s is missing: its splits cannot be carried", path)
            continue
        for split, dataset in load_snapshot(path).items():
            for chunk in dataset.data.column("prompt_hash").chunks:
                for phash in chunk.to_pylist():
                    key = hash_key(phash)
                    known = carried.get(key)
                    if known is None or SPLIT_PRIORITY[split] > SPLIT_PRIORITY[known]:
                        carried[key] = split
    return carried
