"""Dataset columns (datasets Features) and a buffered Arrow stream writer for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Features, List, Value

MESSAGES = List({"role": Value("string"), "content": Value("string")})
FEATURES = Features(
    {
        "id": Value("string"),
        "messages": MESSAGES,
        "prompt": Value("string"),
        "target": Value("string"),
        "target_source": Value("string"),
        # The model's answer a user corrected (rejected beside the correction, for DPO).
        "corrected_response": Value("string"),
        "category": Value("string"),
        "model_name": Value("string"),
        "model_version": Value("string"),
        "prompt_hash": Value("string"),
        "rating": Value("int32"),
        # Who wrote a correction target: "user" or "review" (an enrolled reviewer); else None.
        "corrected_by": Value("string"),
        # How much the record counts in training: 1 + the answer's low-confidence share
        # for uncertain answers and reviewers' corrections (capped), else 1 (uncertain.py).
        "weight": Value("float32"),
    }
)
NEGATIVE_FEATURES = Features(
    {
        "id": Value("string"),
        "messages": MESSAGES,
        "prompt": Value("string"),
        "rejected": Value("string"),
        "category": Value("string"),
        "model_name": Value("string"),
        "model_version": Value("string"),
        "prompt_hash": Value("string"),
        "rating": Value("int32"),
        "split": Value("string"),
    }
)
# Pass one also keeps each record's balancing group and seeded rank for the group cap.
STAGED_SCHEMA = FEATURES.arrow_schema.append(pa.field("_group", pa.string())).append(
    pa.field("_rank", pa.uint64())
)


class StreamWriter:
    """Collects rows column-wise and writes Arrow record batches to an IPC stream file."""

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = 5000) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._batch_rows = batch_rows
        self._columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, schema)

    def add(self, row: dict[str, Any]) -> None:
        """Buffer one row (a dict with every column); flushes a full batch."""
        for name, values in self._columns.items():
            values.append(row[name])
        self.rows += 1
        if len(self._columns["id"]) >= self._batch_rows:
            self.flush()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Write an already built batch (same schema)."""
        self.flush()
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    def flush(self) -> None:
        """Write buffered rows as one record batch."""
        if self._columns["id"]:
            self._writer.write_batch(pa.RecordBatch.from_pydict(self._columns, schema=self.schema))
            self._columns = {name: [] for name in self.schema.names}

    def close(self) -> None:
        """Flush and close the file (an empty file still gets one empty batch for datasets)."""
        self.flush()
        if self.rows == 0:
            self._writer.write_batch(pa.RecordBatch.from_pylist([], schema=self.schema))
        self._writer.close()
        self._sink.close()
