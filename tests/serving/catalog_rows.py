"""Registry rows inserted directly (the registry itself is tested elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.artifacts import sha256_file
from storage.db import Database
from storage.models import Channel, ChannelEvent, ModelVersion, utcnow


def write_artifact(root: Path, rel: str, data: bytes) -> dict[str, Any]:
    """Write a file under the artifact root; its manifest entry."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    quant = rel.rsplit(".", 2)[-2] if rel.count(".") >= 2 else "F16"
    return {
        "name": path.name,
        "path": rel,
        "size": len(data),
        "sha256": sha256_file(path),
        "quantization": quant,
        "format": "gguf",
    }


def add_version(
    db: Database,
    student: str,
    version: int,
    files: list[dict[str, Any]],
    *,
    status: str = "published",
    stable: bool = True,
    metrics: dict[str, Any] | None = None,
) -> int:
    """Insert a version (and point `stable` at it, with an audit event); its row id."""
    with db.transaction(write=True) as session:
        row = ModelVersion(
            student=student,
            version=version,
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
            base_revision="abc123",
            teacher="Qwen/Qwen2.5-7B-Instruct",
            strategy="logits",
            metrics=metrics or {"test": {"perplexity": 9.5, "bleu": 12.0}, "ok": True},
            files=files,
            min_app_version="1.0",
            status=status,
            published_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
            if status == "published"
            else None,
        )
        session.add(row)
        session.flush()
        if stable:
            channel = session.query(Channel).filter_by(student=student, name="stable").one_or_none()
            previous = channel.model_version_id if channel else None
            if channel is None:
                session.add(Channel(student=student, name="stable", model_version_id=row.id))
            else:
                channel.model_version_id = row.id
                channel.updated_at = utcnow()
            session.add(
                ChannelEvent(
                    student=student,
                    channel="stable",
                    action="promote",
                    from_version_id=previous,
                    to_version_id=row.id,
                    reason=f"v{version} passed the gate",
                )
            )
        return row.id
