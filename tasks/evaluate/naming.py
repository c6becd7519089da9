"""Names people read for evaluation sets; stored keys (`test:<fingerprint>`) stay as they are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import DatasetSnapshot, ModelVersion

FIXED_KEY = "fixed"
SNAPSHOT_PREFIX = "test:"
SHOWN_STATUSES = ("published",)  # a version phones could run: the one a split is known by

Kind = Literal["new", "earlier", "fixed", "other"]


@dataclass(frozen=True)
class SetIdentity:
    """What an eval-set key refers to, as far as the database knows."""

    key: str
    kind: Kind
    snapshot_id: int | None = None
    created: datetime | None = None
    version: int | None = None  # this student's published version trained on that snapshot

    @property
    def name(self) -> str:
        """The name a person reads: what the set is, never a hash."""
        if self.kind == "fixed":
            return "fixed benchmark"
        if self.kind == "other":
            return self.key
        where = _short_fingerprint(self.key)
        if self.snapshot_id is not None:
            day = f", {self.created:%Y-%m-%d}" if self.created else ""
            where = f"snapshot {self.snapshot_id}{day}"
        if self.kind == "new":
            return f"new test split ({where})"
        return f"earlier test split ({f'v{self.version}' if self.version else where})"


def _short_fingerprint(key: str) -> str:
    tail = key.removeprefix(SNAPSHOT_PREFIX)
    # A content hash says nothing to a reader; 8 characters still tell two snapshots apart.
    return f"snapshot {tail[:8]}" if len(tail) == 64 else tail


def kind_of(key: str, new_key: str | None) -> Kind:
    """Which role a key plays in this evaluation."""
    if key == FIXED_KEY:
        return "fixed"
    if not key.startswith(SNAPSHOT_PREFIX):
        return "other"
    return "new" if key == new_key else "earlier"


def identify_sets(
    session: Session | None, keys: list[str], *, new_key: str | None, student: str | None
) -> list[SetIdentity]:
    """Each key with its snapshot id, date and the student's version built on it (when known)."""
    out = []
    for key in keys:
        kind = kind_of(key, new_key)
        snapshot = None
        if session is not None and kind in ("new", "earlier"):
            fingerprint = key.removeprefix(SNAPSHOT_PREFIX)
            snapshot = session.scalar(
                select(DatasetSnapshot).where(DatasetSnapshot.fingerprint == fingerprint)
            )
        if snapshot is None:
            out.append(SetIdentity(key, kind))
            continue
        version = None
        if student is not None:
            version = session.scalar(  # type: ignore[union-attr]
                select(ModelVersion.version)
                .where(
                    ModelVersion.student == student,
                    ModelVersion.snapshot_id == snapshot.id,
                    ModelVersion.status.in_(SHOWN_STATUSES),
                )
                .order_by(ModelVersion.version)
                .limit(1)
            )
        out.append(SetIdentity(key, kind, snapshot.id, snapshot.created_at, version))
    return out


def display_names(identities: list[SetIdentity]) -> dict[str, str]:
    """Key -> name; a name two keys would share gets a counter, so no set hides another."""
    names: dict[str, str] = {}
    for ident in identities:
        name = ident.name
        n = 2
        while name in names.values():
            name = f"{ident.name} #{n}"
            n += 1
        names[ident.key] = name
    return names


def name_of(names: dict[str, str] | None, key: str) -> str:
    """The readable name of `key`, the key itself when nobody named it."""
    return (names or {}).get(key, key)
