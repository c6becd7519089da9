"""Every file location of the project, in one place: what lives where under the data dir.

Two roots, both from `StorageSettings`:

- the **data dir** (`DISTILLERY_DATA_DIR`, default `.distillery/`): this host's embedded
  database (`distillery.db`, named by `StorageSettings`, whose default it is), logs, and
  caches that can be rebuilt (materialized and healed models, teacher signals, evaluation
  results);
- the **artifact root** (`DISTILLERY_ARTIFACT_ROOT`, default `<data dir>/artifacts`): what
  the pipeline produces and later stages read (snapshots, training runs, healed bases,
  teacher adapters, the registry's published files).

Code asks the layout for a path instead of joining folder names itself, so a location is
decided once and the tree below is documented by this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.config import StorageSettings


@dataclass(frozen=True)
class Layout:
    """The folders and files under one data dir and one artifact root."""

    data_dir: Path
    artifact_root: Path

    @classmethod
    def from_settings(cls, settings: StorageSettings | None = None) -> Layout:
        """The layout the settings (the environment, by default) name."""
        settings = settings or StorageSettings.read()
        return cls(settings.data_dir.resolve(), settings.resolved_artifact_root())

    # --- this host: database, logs, rebuildable caches (data dir) ---

    def logs(self) -> Path:
        """Logs of services the demo starts."""
        return self.data_dir / "logs"

    def models(self) -> Path:
        """Model presets materialized on first use (converted, pruned, tiny) or healed."""
        return self.data_dir / "models"

    def teacher_cache(self) -> Path:
        """Teacher top-k signals per record, reused by later cycles."""
        return self.data_dir / "teacher_cache"

    def remote_teachers_file(self) -> Path:
        """The TOML file that declares remote (OpenAI-compatible) teachers."""
        return self.data_dir / "remote_teachers.toml"

    def eval_set(self, name: str) -> Path:
        """A saved evaluation set, e.g. the fixed benchmark `fixed-<hash>`."""
        return self.data_dir / "eval" / name

    def eval_cache(self) -> Path:
        """Scores of a model on a set, read back instead of recomputed."""
        return self.data_dir / "eval" / "cache"

    def eval_run(self, label: str, when: datetime | None = None) -> Path:
        """A fresh folder for one evaluation: `eval/runs/<label>-<UTC time>`."""
        stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
        return self.data_dir / "eval" / "runs" / f"{label}-{stamp}"

    # --- what the pipeline produces (artifact root) ---

    def snapshots(self) -> Path:
        """Versioned dataset snapshots, one folder per fingerprint."""
        return self.artifact_root / "datasets"

    def training_run(self, kind: str, model: str, snapshot_id: int) -> Path:
        """A cycle's training of `model` on a snapshot: fixed, so a retried run resumes."""
        return self.artifact_root / "runs" / kind / model / f"snapshot-{snapshot_id}"

    def distill_run(self, student: str, snapshot_folder: str) -> Path:
        """A training started by hand (`distillery distill`) on a snapshot folder."""
        return self.artifact_root / "runs" / "distill" / student / snapshot_folder

    def lock(self, name: str) -> Path:
        """An exclusive lock file (one training per model on this artifact root)."""
        return self.artifact_root / "locks" / f"{name}.lock"

    def base_ggufs(self, student: str) -> Path:
        """The student's base as GGUF, per base revision and quantization (adapter deltas)."""
        return self.artifact_root / "bases" / student

    def teacher_pointer(self, teacher: str) -> Path:
        """The JSON naming the teacher's current fine-tuned adapter."""
        return self.artifact_root / "teachers" / teacher / "current.json"

    def stored(self, path: Path | str) -> str:
        """How the database records a file: relative to the artifact root when inside it, so
        another host with the same store resolves it under its own root."""
        if not Path(path).is_absolute():  # recorded already: relative to the store
            return Path(path).as_posix()
        resolved = Path(path).resolve()
        if resolved.is_relative_to(self.artifact_root):
            return resolved.relative_to(self.artifact_root).as_posix()
        return str(resolved)

    def resolve(self, stored: str) -> Path:
        """The local path of a recorded file (the inverse of `stored`)."""
        path = Path(stored)
        return path if path.is_absolute() else self.artifact_root / path

    def published_models(self) -> Path:
        """The local registry's published files: `models/<student>/...`."""
        return self.artifact_root / "models"


def layout() -> Layout:
    """The layout of the environment's settings (read on each call: tests change them)."""
    return Layout.from_settings()
