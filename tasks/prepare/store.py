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
from datasets.table import InMemoryTable

from storage.artifact_store import artifact_store
from tasks.prepare.columns import FEATURES, NEGATIVE_FEATURES, StreamWriter
from tasks.prepare.config import SPLITS
from tasks.prepare.records import SPLIT_PRIORITY, hash_key

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
DATA_FILE = "data-00000-of-00001.arrow"  # one file per split: datasets loads any size


def write_snapshot(
    work: Path, final: Path, thresholds: dict[str, int] | None, manifest: dict[str, Any]
) -> dict[str, int]:
    """Cap the staged splits into a save_to_disk layout beside the negatives, then move it.

    Returns the split sizes. Records stream batch by batch from the staged files straight
    into each split's single data file (no memory map, no second copy), so memory stays
    bounded; datasets writes only the small metadata files. Everything goes to a temp dir
    renamed onto `final`, so a snapshot directory is either complete or absent.
    """
    fingerprint = manifest["fingerprint"]
    staging = final.parent / f".tmp-{fingerprint[:16]}-{uuid.uuid4().hex[:8]}"
    try:
        sizes = {}
        for split in SPLITS:
            (staging / split).mkdir(parents=True)
            out = staging / split / DATA_FILE
            sizes[split] = _apply_cap(work / f"staged-{split}.arrow", out, thresholds)
            _write_metadata(staging / split, FEATURES, split, fingerprint)
        (staging / "negatives").mkdir()
        os.replace(work / "negatives.arrow", staging / "negatives" / DATA_FILE)
        _write_metadata(staging / "negatives", NEGATIVE_FEATURES, "negatives", fingerprint)
        (staging / "dataset_dict.json").write_text(json.dumps({"splits": list(SPLITS)}))
        stats = manifest.setdefault("filter_stats", {})
        stats["records"] = sum(sizes.values())
        stats["capped"] = stats.get("kept_before_cap", 0) - stats["records"]
        manifest.update(split_sizes=sizes, negatives=stats.get("negatives", 0))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # only losing a race to the same build is fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sizes


def _write_metadata(directory: Path, features: Features, split: str, fingerprint: str) -> None:
    """state.json and dataset_info.json as save_to_disk writes them, for one data file.

    datasets itself writes them, from an empty Dataset of the same features, fingerprint and
    split; only the file list is ours (our data file holds the same Arrow schema).
    """
    empty = Dataset(
        InMemoryTable(features.arrow_schema.empty_table()),
        info=DatasetInfo(features=features),
        split=NamedSplit(split),
        fingerprint=f"{fingerprint[:32]}-{split}",  # fixed, not random: reproducible bytes
    )
    scratch = directory / ".meta"
    bars_were_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        empty.save_to_disk(str(scratch), num_shards=1)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    state = json.loads((scratch / "state.json").read_text())
    state["_data_files"] = [{"filename": DATA_FILE}]
    (directory / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(scratch / "dataset_info.json", directory / "dataset_info.json")
    shutil.rmtree(scratch)


def _apply_cap(staged: Path, out: Path, thresholds: dict[str, int] | None) -> int:
    """Copy staged records whose seeded rank is within their group's cap, minus helper columns."""
    writer = StreamWriter(out, FEATURES.arrow_schema)
    with pa.OSFile(str(staged)) as source:  # plain reads: a memory map would count as RSS
        for batch in pa.ipc.open_stream(source):
            if thresholds is not None:
                groups = batch.column("_group").to_pylist()
                limits = pa.array([thresholds[g] for g in groups], pa.uint64())
                batch = batch.filter(pc.less_equal(batch.column("_rank"), limits))
            table = pa.Table.from_batches([batch]).select(FEATURES.arrow_schema.names)
            for part in table.cast(FEATURES.arrow_schema).to_batches():
                writer.write_batch(part)
    writer.close()
    return writer.rows


def load_snapshot(path: Path | str) -> DatasetDict:
    """The train/validation/test DatasetDict of a snapshot directory (fetched from the shared
    artifact store first when this host lacks it)."""
    loaded = load_from_disk(str(artifact_store().fetch(Path(path))))
    if not isinstance(loaded, DatasetDict):
        raise ValueError(f"{path} holds a single Dataset, not a snapshot DatasetDict")
    return loaded


def load_negatives(path: Path | str) -> Dataset:
    """The low-rated uncorrected responses kept beside a snapshot (for preference training)."""
    return load_from_disk(str(artifact_store().fetch(Path(path)) / "negatives"))


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
