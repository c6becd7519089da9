"""Script entry point: `[accelerate launch] python -m tasks.distill.train_entry --config f.json`.

The JSON holds snapshot_path, teacher, student, output_dir, optional config (DistillConfig
fields), database_url, snapshot_id and teacher_adapter_dir. Under `accelerate launch` every
rank trains; rank 0 computes the teacher signals first and owns the TrainingRun row.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REQUIRED = ("snapshot_path", "teacher", "student", "output_dir")


def parse_job(path: Path) -> dict[str, Any]:
    """Read and check the job file, naming any missing or unknown field."""
    job = json.loads(Path(path).read_text())
    missing = [k for k in REQUIRED if k not in job]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}")
    known = {*REQUIRED, "config", "database_url", "snapshot_id", "teacher_adapter_dir"}
    unknown = sorted(set(job) - known)
    if unknown:
        raise ValueError(f"{path}: unknown fields {unknown}")
    return job


def main(argv: Sequence[str] | None = None) -> int:
    """Run one distillation from a job file and print the result as JSON (rank 0)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="job JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = parse_job(args.config)

    from accelerate import PartialState

    from storage.db import Database
    from tasks.distill.config import DistillConfig
    from tasks.distill.engine import distill

    db = Database(job["database_url"]) if job.get("database_url") else None
    adapter = job.get("teacher_adapter_dir")
    result = distill(
        Path(job["snapshot_path"]),
        teacher=job["teacher"],
        student=job["student"],
        output_dir=Path(job["output_dir"]),
        config=DistillConfig.from_dict(job.get("config", {})),
        db=db,
        snapshot_id=job.get("snapshot_id"),
        teacher_adapter_dir=Path(adapter) if adapter else None,
    )
    if PartialState().is_main_process:
        print(json.dumps(result.to_dict(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
