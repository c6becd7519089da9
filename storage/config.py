"""Where the store lives: database URL, data directory and artifact root, from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

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
    a flow, the service factory) read a `Settings` holding every group they use and make it
    the run's settings; `read()` then returns that run's group, and reads the environment
    only outside any run (a library call, a test).
    """

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True
    )

    @classmethod
    def read(cls) -> Self:
        """The run's group when an entry point passed one in, else the environment's."""
        active = _ACTIVE.get()
        if active is not None and cls in active.groups:
            return active.get(cls)
        return cls.from_environment()

    @classmethod
    def from_environment(cls) -> Self:
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


Group = TypeVar("Group", bound=DistillerySettings)


class InvalidSettings(ValueError):
    """DISTILLERY_ variables that do not parse, one line each, with where the list is."""


class Settings:
    """Every settings group a process uses, read together and passed in as one object.

    An entry point calls `Settings.read(...)` once: a bad value in any group fails there,
    before any work, naming the variable. `with settings.active():` makes it the run's
    settings, so each group's `read()` inside the run (flows, tasks, the threads Prefect
    runs tasks in) returns this object's group. Why a run context and not a flow parameter:
    Prefect stores, shows and hashes flow parameters, and these groups hold a database URL
    and the service's tokens.
    """

    def __init__(self, groups: Mapping[type[DistillerySettings], DistillerySettings]) -> None:
        for cls, group in groups.items():
            if type(group) is not cls:
                raise TypeError(f"{cls.__name__} holds a {type(group).__name__}")
        # Read-only, like each (frozen) group: no stage can change what another reads.
        self.groups: Mapping[type[DistillerySettings], DistillerySettings] = MappingProxyType(
            dict(groups)
        )

    @classmethod
    def read(cls, *group_classes: type[DistillerySettings]) -> Settings:
        """These groups as the environment sets them; every bad variable in one error."""
        groups: dict[type[DistillerySettings], DistillerySettings] = {}
        problems: list[str] = []
        for group_class in group_classes:
            try:
                groups[group_class] = group_class.from_environment()
            except ValidationError as exc:
                problems += [_problem(error) for error in exc.errors()]
            except SourceError as exc:  # a JSON-valued variable that is not JSON
                problems.append(f"{exc}: it must be JSON")
        if problems:
            raise InvalidSettings(
                "; ".join(problems) + "\n  `distillery settings` lists every setting with "
                "its default (docs/settings.md)"
            )
        return cls(groups)

    @classmethod
    def current(cls, *group_classes: type[DistillerySettings]) -> Settings:
        """The run's settings when they hold these groups, else these groups read now."""
        active = _ACTIVE.get()
        if active is not None and all(c in active.groups for c in group_classes):
            return active
        return cls.read(*group_classes)

    def get(self, group_class: type[Group]) -> Group:
        """One group, e.g. `settings.get(StorageSettings).data_dir`."""
        return self.groups[group_class]  # type: ignore[return-value]

    def replace(self, *groups: DistillerySettings) -> Settings:
        """A copy with these groups in place of the ones of their class."""
        return Settings({**self.groups, **{type(g): g for g in groups}})

    @contextmanager
    def active(self) -> Iterator[Settings]:
        """Make these the settings every `read()` returns until the block ends."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def __repr__(self) -> str:
        return f"Settings({', '.join(c.__name__ for c in self.groups)})"


def _problem(error: Any) -> str:
    """One bad variable as the user wrote it: `DISTILLERY_PRECISION='x': Input should be ...`."""
    name = f"{PREFIX}{str(error['loc'][0]).upper()}" if error["loc"] else PREFIX
    shown = os.environ.get(name, error.get("input"))
    return f"{name}={shown!r}: {error['msg']}"


# The run's settings, set by `Settings.active()`; contextvars follow Prefect's task threads.
_ACTIVE: ContextVar[Settings | None] = ContextVar("distillery_settings", default=None)
