"""The artifact store shared by every host: an fsspec URL that this host's artifact root mirrors.

One host needs nothing: without `DISTILLERY_ARTIFACT_STORE` the artifact root *is* the store
and `push`/`fetch` only check the local disk. Several hosts (a GPU worker training, a CPU
worker evaluating, a small server serving) set the same store URL — `s3://bucket/prefix`
(AWS, MinIO, R2: any S3-compatible endpoint), `gs://bucket/prefix`, `file:///mnt/shared` —
and keep their own artifact root as a working copy:

- a stage that writes a folder the next stage reads (a snapshot, an adapter) **pushes** it;
- a stage that reads one **fetches** it first, which downloads it when this host lacks it.

The database records the same relative key for both (storage.models.StorePath), so a row
written on one host resolves on every other.

Why a mirrored working copy rather than reading through fsspec everywhere: the libraries
that consume these folders (datasets, transformers, PEFT, llama.cpp) open local files and
memory-map them. fsspec still does every transfer, so any backend it knows works, with
credentials from the backend's standard environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL,
GOOGLE_APPLICATION_CREDENTIALS, ...) or `DISTILLERY_ARTIFACT_STORE_OPTIONS`.

A pushed folder is complete once its marker (COMPLETE, listing every file and its size) is
written, last; a fetch ignores a folder without it and lands in a temporary sibling renamed
into place, so a reader never sees half a folder, whichever host crashed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from storage.config import StorageSettings

log = logging.getLogger(__name__)
COMPLETE = ".distillery-complete.json"


class ArtifactMissingError(FileNotFoundError):
    """A folder the database names is neither on this host nor complete in the store."""


@dataclass(frozen=True)
class ArtifactStore:
    """This host's artifact root and, when several hosts share artifacts, the store's URL."""

    local_root: Path
    url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: StorageSettings | None = None, *, local_root: Path | None = None
    ) -> ArtifactStore:
        """The store the settings (the environment, by default) name; `local_root` overrides
        the artifact root (a registry or service given its own)."""
        settings = settings or StorageSettings.read()
        root = Path(local_root).resolve() if local_root else settings.resolved_artifact_root()
        url = settings.artifact_store.rstrip("/") if settings.artifact_store else None
        if url and _local_path(url) == root:
            url = None  # the store is this artifact root itself: nothing to mirror
        return cls(root, url, dict(settings.artifact_store_options))

    @property
    def shared(self) -> bool:
        """Whether folders travel through a store beyond this host's disk."""
        return self.url is not None

    def key(self, local: Path) -> str:
        """The key of a path under the artifact root: the same on every host."""
        resolved = Path(local).resolve()
        if not resolved.is_relative_to(self.local_root):
            raise ValueError(f"{local} is outside the artifact root {self.local_root}")
        return resolved.relative_to(self.local_root).as_posix()

    def uri(self, local: Path) -> str:
        """Where a path lives for every host: its store URL, else its local path."""
        if self.url is None or not Path(local).resolve().is_relative_to(self.local_root):
            return str(local)
        return f"{self.url}/{self.key(local)}"

    def push(self, local: Path, *, once: bool = False) -> None:
        """Upload a folder (or file) under the artifact root so other hosts can fetch it.

        `once`: a content-addressed file (a shared base GGUF) already there with its size is
        not sent again. A folder whose marker lists the same files and sizes never is.
        """
        if self.url is None or not Path(local).resolve().is_relative_to(self.local_root):
            return
        fs, base = self._fs()
        target = f"{base}/{self.key(local)}"
        local = Path(local)
        if local.is_file():
            if once and fs.isfile(target) and fs.size(target) == local.stat().st_size:
                return
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(local), target)
            return
        files = sorted(p for p in local.rglob("*") if p.is_file() and p.name != COMPLETE)
        sizes = {p.relative_to(local).as_posix(): p.stat().st_size for p in files}
        if _complete_sizes(fs, target) == sizes:
            return  # pushed already (content-addressed snapshots, a rerun): nothing to send
        for path in files:
            remote = f"{target}/{path.relative_to(local).as_posix()}"
            fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(path), remote)
        fs.pipe_file(f"{target}/{COMPLETE}", json.dumps({"files": sizes}).encode())

    def fetch(self, local: Path) -> Path:
        """`local`, downloaded from the store first when this host lacks it.

        Raises ArtifactMissingError naming the store URI when neither has it complete.
        """
        local = Path(local)
        if local.exists():
            return local
        if self.url is None or not local.resolve().is_relative_to(self.local_root):
            raise ArtifactMissingError(f"{local} does not exist")
        fs, base = self._fs()
        source = f"{base}/{self.key(local)}"
        if fs.isfile(source):
            _get_file(fs, source, local)
            return local
        # A folder inside a pushed one (a snapshot's test split) comes with its pushed folder.
        for folder in [local, *local.resolve().parents]:
            if folder == self.local_root or not folder.is_relative_to(self.local_root):
                break
            sizes = _complete_sizes(fs, f"{base}/{self.key(folder)}")
            if sizes is not None:
                self._download(fs, f"{base}/{self.key(folder)}", folder, sizes)
                if local.exists():
                    return local
                break
        raise ArtifactMissingError(
            f"{self.uri(local)} is not in the artifact store (or its upload never finished)"
        )

    def fetch_files(self, folder: Path, wanted: list[Path]) -> list[Path]:
        """Those of `wanted` (files under `folder`) the store has, downloaded; one listing.

        For many small files (teacher cache entries): one listing of the folder instead of a
        request per file, then one batched download, each file renamed into place whole.
        """
        if self.url is None or not wanted:
            return []
        fs, base = self._fs()
        remote_folder = f"{base}/{self.key(folder)}"
        try:
            listed = {str(p).rstrip("/") for p in fs.find(remote_folder)}
        except FileNotFoundError:
            return []
        found = [
            p for p in wanted if f"{remote_folder}/{p.relative_to(folder).as_posix()}" in listed
        ]
        if not found:
            return []
        partials = [p.with_name(f".fetch-{uuid.uuid4().hex[:8]}-{p.name}") for p in found]
        for path in found:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.get([f"{base}/{self.key(p)}" for p in found], [str(p) for p in partials])
            for partial, path in zip(partials, found, strict=True):
                os.replace(partial, path)
        finally:
            for partial in partials:
                partial.unlink(missing_ok=True)
        return found

    def remove(self, paths: list[Path]) -> int:
        """Delete these files (under the artifact root) from the store; how many it had.

        For erasure: the store's copy must go with this host's. One listing per folder.
        """
        if self.url is None or not paths:
            return 0
        fs, base = self._fs()
        keys = [f"{base}/{self.key(p)}" for p in paths]
        present = []
        for folder in sorted({k.rsplit("/", 1)[0] for k in keys}):
            try:
                listed = {str(p).rstrip("/") for p in fs.find(folder)}
            except FileNotFoundError:
                continue
            present += [k for k in keys if k.rsplit("/", 1)[0] == folder and k in listed]
        if present:
            fs.rm(present)
        return len(present)

    def refresh(self, local: Path) -> Path:
        """A small file that changes in place (a pointer): the store's copy when it has one."""
        if self.url is None or not Path(local).resolve().is_relative_to(self.local_root):
            return Path(local)
        fs, base = self._fs()
        source = f"{base}/{self.key(local)}"
        if fs.isfile(source):
            _get_file(fs, source, Path(local))
        return Path(local)

    def signed_url(self, relative: str, seconds: int) -> str | None:
        """A presigned URL for a file in the store, valid `seconds`; None where the backend
        cannot sign (a shared mount) or the store is this host's disk."""
        if self.url is None:
            return None
        fs, base = self._fs()
        try:
            return str(fs.sign(f"{base}/{relative}", expiration=seconds))
        except NotImplementedError:
            return None

    def _download(self, fs: Any, source: str, local: Path, sizes: dict[str, int]) -> None:
        """A pushed folder into `local`, through a temporary sibling renamed into place."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".fetch-{uuid.uuid4().hex[:8]}-{local.name}")
        try:
            for name, size in sizes.items():
                if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                    raise ArtifactMissingError(f"{source}: its marker names {name!r}")
                (partial / name).parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f"{source}/{name}", str(partial / name))
                if (partial / name).stat().st_size != size:
                    raise ArtifactMissingError(f"{source}/{name}: size differs from its upload")
            try:
                os.replace(partial, local)
            except OSError:
                if not local.exists():  # else another fetch on this host won the race
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def _fs(self) -> tuple[Any, str]:
        import fsspec  # only hosts that share a store need it (and its backend's package)

        assert self.url is not None
        fs, base = fsspec.core.url_to_fs(self.url, **self.options)
        fs.invalidate_cache()  # fsspec reuses instances: forget listings other hosts changed
        return fs, str(base).rstrip("/")


def _get_file(fs: Any, source: str, local: Path) -> None:
    """One file from the store, renamed into place whole."""
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f".fetch-{uuid.uuid4().hex[:8]}-{local.name}")
    try:
        fs.get_file(source, str(partial))
        os.replace(partial, local)
    finally:
        partial.unlink(missing_ok=True)


def _complete_sizes(fs: Any, folder: str) -> dict[str, int] | None:
    """The file sizes a folder's marker lists, or None if the folder is not complete."""
    try:
        return dict(json.loads(fs.cat_file(f"{folder}/{COMPLETE}"))["files"])
    except FileNotFoundError:
        return None


def _local_path(url: str) -> Path | None:
    """The local folder a `file://` (or plain path) URL names; None for remote stores."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://")).resolve()
    return None if "://" in url else Path(url).resolve()


def fetch_published(store: ArtifactStore, root: Path, relative: str) -> bool:
    """Copy a published file the database lists from the store into `root`; whether it came.

    `relative` is checked like a client path (storage.artifacts.resolve_artifact): nothing
    outside the root is ever written.
    """
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("..", ".") for p in parts):
        return False
    try:
        store.fetch(root.joinpath(*parts))
    except (ArtifactMissingError, OSError) as exc:
        log.warning("published file %s could not be fetched: %s", relative, exc)
        return False
    return True


def artifact_store() -> ArtifactStore:
    """The store of the environment's settings (read on each call: tests change them)."""
    return ArtifactStore.from_settings()
