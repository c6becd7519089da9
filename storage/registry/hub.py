"""The Hugging Face Hub registry: a repo per student, a branch and a tag per version.

Kept thin on purpose: each step is one `HfApi` call, so the test stand-in of the Hub's HTTP
routes (tests/storage/registry/hub_standin.py) covers everything this backend sends:
create_repo, create_branch, create_commit (preupload, LFS batch + PUT, validate-yaml, commit,
or repo_info when nothing changed) and create_tag. Uploads go over the Git LFS protocol when
`HF_HUB_DISABLE_XET=1` (the Hub accepts both; Xet is used when hf_xet is installed otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.db import Database
from storage.registry.base import Registry
from storage.registry.files import role_of
from storage.registry.types import ChecksumMismatchError, FileSpec, RegistryError, VersionSpec

DEFAULT_ENDPOINT = "https://huggingface.co"


class HubRegistry(Registry):
    """Registry whose files live on the Hub; versions, channels and audit stay in SQL."""

    backend = "hub"

    def __init__(
        self,
        database: Database,
        artifact_root: Path,
        *,
        namespace: str,
        token: str | None,
        endpoint: str | None = None,
        private: bool = False,
    ) -> None:
        super().__init__(database, artifact_root)
        # Imported here: the base install (service + store) does not ship huggingface_hub.
        from huggingface_hub import HfApi

        if not namespace:
            raise RegistryError("the Hub registry needs a namespace (DISTILLERY_HUB_NAMESPACE)")
        self.namespace = namespace
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.private = private
        # token=False stops huggingface_hub from falling back to a token saved on disk.
        self.api = HfApi(endpoint=self.endpoint, token=token or False)

    def repo_id(self, student: str) -> str:
        """The Hub repo of a student."""
        return f"{self.namespace}/{student}"

    @staticmethod
    def branch(version: int) -> str:
        """The branch holding a version's files."""
        return f"v{version}"

    @staticmethod
    def tag(version: int) -> str:
        """The immutable tag marking a version's release commit (named apart from the branch)."""
        return f"release-v{version}"

    def manifest_location(self, student: str, version: int) -> str | None:
        """URL of manifest.json on the version's branch."""
        return self._url(student, "manifest.json", self.branch(version))

    def _place(
        self,
        spec: VersionSpec,
        version: int,
        files: list[FileSpec],
        planned: list[dict[str, Any]],
        manifest: bytes,
        card: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        from huggingface_hub import CommitOperationAdd

        repo_id = self.repo_id(spec.student)
        self.api.create_repo(repo_id, private=self.private, exist_ok=True)
        self.api.create_branch(repo_id, branch=self.branch(version), exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=_repo_path(entry), path_or_fileobj=str(f.path))
            for f, entry in zip(files, planned, strict=True)
        ]
        operations.append(
            CommitOperationAdd(path_in_repo="manifest.json", path_or_fileobj=manifest)
        )
        if card is not None:
            operations.append(
                CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode())
            )
        # The library hashes each file again while preparing the upload (the LFS oid is its
        # sha256): refuse if a file changed after it was checked.
        for op, entry in zip(operations, planned, strict=False):
            if (
                op.upload_info.sha256.hex() != entry["sha256"]
                or op.upload_info.size != entry["size"]
            ):
                raise ChecksumMismatchError(f"{entry['name']} changed while publishing")
        commit = self.api.create_commit(
            repo_id,
            operations,
            commit_message=f"{spec.student} version {version}",
            revision=self.branch(version),
        )
        revision = commit.oid
        # exist_ok: a rerun after a crash finds the tag it already made.
        self.api.create_tag(repo_id, tag=self.tag(version), revision=revision, exist_ok=True)
        entries = [
            {
                **entry,
                "path": _repo_path(entry),
                "url": self._url(spec.student, _repo_path(entry), revision),
                "repo_id": repo_id,
                "revision": revision,
            }
            for entry in planned
        ]
        return entries, revision

    def _url(self, student: str, filename: str, revision: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(
            self.repo_id(student), filename, revision=revision, endpoint=self.endpoint
        )


def _repo_path(entry: dict[str, Any]) -> str:
    """Where a file sits in the repo: the base under base/, unchanged from version to version."""
    return f"base/{entry['name']}" if role_of(entry) == "base" else str(entry["name"])
