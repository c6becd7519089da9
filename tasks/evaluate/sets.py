"""Evaluation sets: a snapshot's test split, earlier test splits, and the fixed benchmark."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_from_disk

from storage.artifact_store import ArtifactMissingError, artifact_store
from storage.layout import layout
from tasks.sampledata import benchmark_tasks

FIXED_SET_NAME = "fixed"


def fixed_benchmark_set(path: str | Path | None = None, limit: int | None = None) -> Dataset:
    """The fixed benchmark: the built-in held-out tasks, or those of a JSONL file at `path`."""
    tasks = benchmark_tasks(path)
    if not tasks:
        raise ValueError(f"{path or 'the sample data'} holds no benchmark tasks")
    rows = [
        {
            "id": t.id,
            "prompt": t.prompt,
            "target": t.answer,
            "category": t.category,
            "checkable": t.checkable,
            "messages": [
                {"role": "user", "content": t.prompt},
                {"role": "assistant", "content": t.answer},
            ],
        }
        for t in tasks[:limit]
    ]
    return Dataset.from_list(rows)


def cache_fixed_benchmark(
    out_dir: str | Path | None = None,
    *,
    source: str | Path | None = None,
    limit: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Save the fixed set once (default <data dir>/eval/fixed-<content hash>[-N]); its path."""
    data = fixed_benchmark_set(source, limit)
    # Named by content, so a changed task list never reuses a stale cached copy.
    digest = hashlib.sha256("\n".join(data["id"]).encode()).hexdigest()[:8]
    name = f"{FIXED_SET_NAME}-{digest}" + (f"-{limit}" if limit else "")
    target = Path(out_dir) if out_dir else layout().eval_set(name)
    if (target / "dataset_info.json").exists() and not overwrite:
        return target.resolve()
    data.save_to_disk(str(target))
    return target.resolve()


def load_eval_set(path: str | Path, split: str = "test", *, allow_empty: bool = False) -> Dataset:
    """A saved Dataset, or the `split` of a saved DatasetDict (a snapshot), checked for columns."""
    p = Path(path)
    try:
        artifact_store().fetch(p)  # a snapshot's split another host prepared
    except ArtifactMissingError as exc:
        raise FileNotFoundError(f"eval set {exc}") from None
    loaded = load_from_disk(str(p))
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise ValueError(f"{p} has no {split!r} split (splits: {sorted(loaded)})")
        loaded = loaded[split]
    missing = {"prompt", "target"} - set(loaded.column_names)
    if "messages" not in loaded.column_names and missing:
        raise ValueError(f"eval set {p} needs 'messages' or 'prompt'+'target' columns")
    if len(loaded) == 0 and not allow_empty:
        raise ValueError(f"eval set {p} is empty")
    return loaded


def conversation(row: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The prompt messages (everything before the final answer) and the reference answer."""
    messages = row.get("messages")
    if messages:
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"row {row.get('id')!r}: last message is not the assistant's")
        return [dict(m) for m in messages[:-1]], messages[-1]["content"]
    return [{"role": "user", "content": row["prompt"]}], row["target"]


def snapshot_set_name(path: str | Path) -> str:
    """The stored key of a snapshot's test split, `test:<snapshot fingerprint>`.

    `path` is the snapshot directory or its `test` split directory (what earlier splits are
    passed as): both give the same key, so one split keeps one key across cycles. People read
    the names `tasks.evaluate.naming` gives these keys, never the keys themselves.
    """
    resolved = Path(path).resolve()
    parent = resolved.parent
    if resolved.name == "test" and any(
        (parent / f).is_file() for f in ("manifest.json", "dataset_dict.json")
    ):
        resolved = parent
    return f"test:{resolved.name}"


def eval_set_paths(
    snapshot_path: str | Path | None,
    earlier_test_paths: tuple[str, ...] | list[str] = (),
    fixed_set_path: str | Path | None = None,
) -> dict[str, str]:
    """Key -> path of every set: the new test split first, earlier test splits, then `fixed`.

    A split passed twice (or an earlier one that is the new one) is evaluated once.
    """
    sets = (
        {snapshot_set_name(snapshot_path): str(Path(snapshot_path).resolve())}
        if snapshot_path
        else {}
    )
    for p in earlier_test_paths:
        sets.setdefault(snapshot_set_name(p), str(Path(p).resolve()))
    sets[FIXED_SET_NAME] = str(Path(fixed_set_path or cache_fixed_benchmark()).resolve())
    if snapshot_path and len(load_eval_set(snapshot_path, allow_empty=True)) == 0:
        raise ValueError(f"snapshot {snapshot_path} has an empty test split: nothing to gate on")
    # Small snapshots can have empty test splits: an earlier one holds nothing to compare.
    return {n: p for n, p in sets.items() if len(load_eval_set(p, allow_empty=True)) > 0}
