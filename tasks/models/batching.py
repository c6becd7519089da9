"""Token rows padded into one batch: left for decoding, right for training and scoring."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

Side = Literal["left", "right"]


def pad_ids(
    rows: Sequence[Sequence[int]], pad_id: int, side: Side = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T] ids and attention mask, each row padded with `pad_id` to the longest."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.as_tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def pad_batch(rows: list[dict[str, Any]], pad_id: int, side: Side = "right") -> dict[str, Any]:
    """input_ids / attention_mask / labels (-100 where absent or padding) of record dicts."""
    ids, mask = pad_ids([r["input_ids"] for r in rows], pad_id, side)
    no_label = [[-100] * len(r["input_ids"]) for r in rows]
    labels, _ = pad_ids(
        [r.get("labels", n) for r, n in zip(rows, no_label, strict=True)], -100, side
    )
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
