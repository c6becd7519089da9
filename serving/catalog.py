"""Cached view of the registry: stable releases, rendered manifests and downloadable paths."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from starlette.concurrency import run_in_threadpool

from serving.deltas import agent_entries, by_role, delta_fields, fetch_plan
from serving.settings import ServiceSettings
from storage.db import Database
from storage.registry.rollouts import CANARY, in_cohort
from storage.repo.catalog import (
    Canary,
    Release,
    canary_releases,
    catalog_state,
    channel_releases,
    published_file_paths,
)

_RENDER_CACHE_LIMIT = 512


@dataclass
class _Snapshot:
    """One consistent read of the catalog and the manifests rendered from it."""

    state: tuple[Any, ...] | None = None
    releases: list[Release] = field(default_factory=list)
    agent_releases: list[Release] = field(default_factory=list)
    canaries: dict[str, Canary] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()
    rendered: dict[tuple[Any, ...], tuple[bytes, str]] = field(default_factory=dict)


class CatalogCache:
    """Releases and published paths, re-read only when the catalog state key changes.

    Phones poll the manifest: within `manifest_cache_seconds` a request costs no query at
    all; after it, one cheap aggregate query decides whether anything must be re-read.
    The snapshot is swapped whole, so a render never mixes two catalog states.
    """

    def __init__(self, database: Database, settings: ServiceSettings) -> None:
        self.database = database
        self.settings = settings
        self._snap = _Snapshot()
        self._checked_at = float("-inf")
        self._refreshing = False

    @property
    def releases(self) -> list[Release]:
        """The channel's release of every student (as of the last refresh)."""
        return self._snap.releases

    @property
    def paths(self) -> frozenset[str]:
        """Artifact paths of published versions."""
        return self._snap.paths

    async def ensure_fresh(self) -> None:
        """Re-check the catalog if the cache period has passed; one check runs at a time."""
        if time.monotonic() - self._checked_at < self.settings.manifest_cache_seconds:
            return
        if self._refreshing and self._snap.state is not None:
            return  # a check is under way: answer from the current snapshot meanwhile
        self._refreshing = True
        try:
            await run_in_threadpool(self._refresh)
        finally:
            self._refreshing = False

    def _refresh(self) -> None:
        checked_at = time.monotonic()
        with self.database.transaction() as session:
            state = catalog_state(session=session)
            if state != self._snap.state:
                self._snap = _Snapshot(
                    state=state,
                    releases=channel_releases(
                        session=session, channel=self.settings.mobile_channel
                    ),
                    agent_releases=channel_releases(
                        session=session, channel=self.settings.mobile_channel, agents=True
                    ),
                    canaries=canary_releases(session=session),
                    paths=frozenset(published_file_paths(session=session)),
                )
        self._checked_at = checked_at

    def cohorts(self, device_id: str | None) -> frozenset[str]:
        """The students whose running rollout serves this device its canary version."""
        canaries = self._snap.canaries
        if not device_id or not canaries:
            return frozenset()
        return frozenset(
            s for s, c in canaries.items() if in_cohort(s, device_id, c.rollout_id, c.percent)
        )

    def manifest(
        self,
        base_url: str,
        student: str | None,
        current_version: int | None,
        base_sha256: str | None = None,
        canary: frozenset[str] = frozenset(),
    ) -> tuple[bytes, str]:
        """(body, strong ETag) of the latest-manifest for these parameters, rendered once.

        `canary`: students this device gets on its rollout's version (`cohorts`); the body,
        and so the ETag, says so, so a device moved in or out of a cohort sees a change.
        """
        snap = self._snap
        key = (base_url, student, current_version, base_sha256, canary)
        hit = snap.rendered.get(key)
        if hit is None:
            content = self._render(snap, base_url, student, current_version, base_sha256, canary)
            body = orjson.dumps(content)
            hit = (body, f'"{hashlib.sha256(body).hexdigest()[:40]}"')
            if len(snap.rendered) >= _RENDER_CACHE_LIMIT:
                snap.rendered.clear()
            snap.rendered[key] = hit
        return hit

    def _render(
        self,
        snap: _Snapshot,
        base_url: str,
        student: str | None,
        current_version: int | None,
        base_sha256: str | None,
        canary: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        models = []
        for stable in snap.releases:
            if student is not None and stable.student != student:
                continue
            on_canary = stable.student in canary and stable.student in snap.canaries
            release = snap.canaries[stable.student].release if on_canary else stable
            entry = release_entry(release, base_url, self.settings.quantization_preference)
            if entry is None:
                continue  # a release without files cannot be downloaded
            entry["channel"] = CANARY if on_canary else self.settings.mobile_channel
            base = entry["base"]["sha256"] if entry["base"] else None
            agents = [r for r in snap.agent_releases if r.student == release.student]
            entry["agents"] = agent_entries(agents, base_url, file_url, base)
            if current_version is not None:
                entry["update_available"] = release.version > current_version
            if current_version is not None or base_sha256 is not None:
                entry["fetch"] = fetch_plan(
                    entry, current_version=current_version, phone_base_sha256=base_sha256
                )
            models.append(entry)
        body: dict[str, Any] = {"channel": self.settings.mobile_channel, "models": models}
        if current_version is not None:
            body["current_version"] = current_version
            body["update_available"] = any(m["update_available"] for m in models)
        return body


def file_url(entry: dict[str, Any], base_url: str) -> str:
    """A file's absolute download URL: its own (Hub) url, else our artifact route."""
    if entry.get("url"):
        return str(entry["url"])
    return f"{base_url}/api/artifacts/{quote(str(entry['path']))}"


def pick_primary(files: list[dict[str, Any]], preference: list[str]) -> dict[str, Any] | None:
    """The file a phone should download: the first quantization in preference order."""
    by_quant = {str(f.get("quantization") or "").upper(): f for f in reversed(files)}
    for quant in preference:
        if quant.upper() in by_quant:
            return by_quant[quant.upper()]
    gguf = [f for f in files if str(f.get("name", "")).lower().endswith(".gguf")]
    candidates = gguf or files
    return candidates[0] if candidates else None


def release_entry(release: Release, base_url: str, preference: list[str]) -> dict[str, Any] | None:
    """The manifest entry of one release, None when it lists no file."""
    files = [f for f in release.files if isinstance(f, dict) and (f.get("path") or f.get("url"))]
    # The primary download is a whole model: never the adapter or the base alone.
    primary = pick_primary(by_role(files, "merged"), preference)
    if primary is None:
        return None
    return {
        "student": release.student,
        "version": release.version,
        "download_url": file_url(primary, base_url),
        "file_name": primary.get("name"),
        "size": primary.get("size"),
        "sha256": primary.get("sha256"),
        "quantization": primary.get("quantization"),
        "format": primary.get("format", "gguf"),
        "base_model": release.base_model,
        "base_revision": release.base_revision,
        "released_at": release.published_at,
        "min_app_version": release.min_app_version,
        "files": [
            {
                "name": f.get("name"),
                "url": file_url(f, base_url),
                "size": f.get("size"),
                "sha256": f.get("sha256"),
                "quantization": f.get("quantization"),
                "format": f.get("format"),
                "role": f.get("role") or "merged",
            }
            for f in files
        ],
        **delta_fields(files, base_url, file_url),
    }
