"""Model registry: atomic publish of versions, channels with promotion and rollback."""

from __future__ import annotations

from storage.config import StorageSettings
from storage.db import Database
from storage.registry.base import Registry
from storage.registry.config import RegistrySettings
from storage.registry.local import LocalRegistry
from storage.registry.types import (
    ChannelMove,
    ChecksumMismatchError,
    FileSpec,
    HistoryEntry,
    NotPublishedError,
    Published,
    RegistryError,
    UnknownVersionError,
    VersionInfo,
    VersionSpec,
)

__all__ = [
    "ChannelMove",
    "ChecksumMismatchError",
    "FileSpec",
    "HistoryEntry",
    "LocalRegistry",
    "NotPublishedError",
    "Published",
    "Registry",
    "RegistryError",
    "RegistrySettings",
    "UnknownVersionError",
    "VersionInfo",
    "VersionSpec",
    "open_registry",
]


def open_registry(
    database: Database,
    *,
    settings: RegistrySettings | None = None,
    storage: StorageSettings | None = None,
    token: str | None = None,
) -> Registry:
    """The configured backend; `token` is only used by the Hub backend."""
    settings = settings or RegistrySettings.read()
    root = (storage or StorageSettings.read()).resolved_artifact_root()
    if settings.registry == "hub":
        from storage.registry.hub import HubRegistry

        return HubRegistry(
            database,
            root,
            namespace=settings.hub_namespace or "",
            token=token,
            endpoint=settings.hub_endpoint,
            private=settings.hub_private,
        )
    return LocalRegistry(database, root)
