"""Where the store lives: database URL, data directory and artifact root, from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "DISTILLERY_"
ENV_FILE = ".env"

# One parsed group per (class, environment): `read()` returns it until a DISTILLERY_ variable,
# the working directory or `.env` changes (tests and the benches set DISTILLERY_DATA_DIR).
_READ: dict[tuple[type, tuple[Any, ...]], BaseSettings] = {}


def _environment() -> tuple[Any, ...]:
    """What a group's values depend on: DISTILLERY_ variables, working directory, `.env`."""
    cwd = Path.cwd()
    try:
        env_file = (cwd / ENV_FILE).stat().st_mtime_ns
    except OSError:
        env_file = None
    own = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))
    return cwd, env_file, own


class DistillerySettings(BaseSettings):
    """A group of DISTILLERY_<NAME> variables (or `.env` lines), frozen once read.

    Every group (storage, registry, pipeline, service) derives from this one class, so the
    prefix, the `.env` file and how a group is read are declared once. Entry points (the CLI,
    a flow, the service factory) call `read()` and pass the group down; functions that take
    a group accept it as a parameter and fall back to `read()` only when none is given.
    """

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True
    )

    @classmethod
    def read(cls) -> Self:
        """This group as the environment sets it, parsed once per distinct environment."""
        key = (cls, _environment())
        found = _READ.get(key)
        if found is None:
            if len(_READ) > 64:  # environments a long test session went through
                _READ.clear()
            found = _READ[key] = cls()
        return found  # type: ignore[return-value]


class StorageSettings(DistillerySettings):
    """Storage locations; every field can be set as DISTILLERY_<NAME> or in `.env`."""

    data_dir: Path = Field(
        Path(".distillery"), description="the embedded database, logs and rebuildable caches"
    )
    database_url: str | None = Field(
        None,
        description="any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
        "[sqlite:///<data dir>/distillery.db]",
    )
    artifact_root: Path | None = Field(
        None, description="snapshots, training runs, published files [<data dir>/artifacts]"
    )
    artifact_store: str | None = Field(
        None,
        description="an fsspec URL every host shares (s3://bucket/prefix, gs://..., "
        "file:///mnt/shared); the artifact root is then this host's working copy "
        "[none: the artifact root is the store, one host]",
    )
    artifact_store_options: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON options for the store\'s fsspec backend, e.g. {"endpoint_url": '
        '"http://minio:9000"}; credentials come from its standard environment [{}]',
    )
    # Rows newer than this are left for the next cycle: a PostgreSQL sequence value is taken
    # at insert time but becomes visible at commit, so the newest ids may still have gaps.
    # SQLite serialises writers (ids become visible in order), so it needs none. None: by backend.
    watermark_settle_seconds: float | None = Field(
        None, description="newest rows wait this long for the next snapshot [0 SQLite, 5 servers]"
    )

    retention_days: int | None = Field(
        None,
        ge=1,
        description="erase interactions received more than this many days ago, daily "
        "(the `retention` deployment) [off: kept until erased]",
    )
    erasure_retrain: bool = Field(
        False,
        description="after an erasure, a student's next training starts from the base instead "
        "of warm-starting from a version trained on erased rows",
    )

    def settle_seconds(self, database_url: str | None = None) -> float:
        """The settle window in force: the setting, else 5 s on servers and 0 on SQLite."""
        if self.watermark_settle_seconds is not None:
            return self.watermark_settle_seconds
        url = database_url or self.resolved_database_url()
        return 0.0 if url.startswith("sqlite") else 5.0

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'distillery.db').resolve()}"

    def resolved_artifact_root(self) -> Path:
        """The configured artifact root, or `<data dir>/artifacts`."""
        return (self.artifact_root or self.data_dir / "artifacts").resolve()
