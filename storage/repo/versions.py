"""Model version rows: numbering per student, lookup, and the pending -> published step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import ModelVersion, utcnow

PUBLISHED = "published"
PENDING = "pending"


def next_version_number(student: str, *, session: Session) -> int:
    """One more than the highest version of `student` (1 for a new student)."""
    highest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.student == student)
    )
    return int(highest or 0) + 1


def get_version(student: str, version: int, *, session: Session) -> ModelVersion | None:
    """The row of `student` version `version`, or None."""
    return session.scalar(
        select(ModelVersion).where(ModelVersion.student == student, ModelVersion.version == version)
    )


def get_version_by_id(version_id: int, *, session: Session) -> ModelVersion | None:
    """The row with primary key `version_id`, or None."""
    return session.get(ModelVersion, version_id)


def find_version_with_files(
    student: str, digests: Sequence[tuple[str, str]], *, session: Session
) -> ModelVersion | None:
    """A non-failed version of `student` whose manifest holds exactly these (name, sha256) pairs.

    This is how a rerun of the same publish finds the version it started: the pending row
    records the planned manifest before any file is placed.
    """
    wanted = sorted(digests)
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.student == student, ModelVersion.status.in_([PENDING, PUBLISHED]))
        .order_by(ModelVersion.version.desc())
    )
    for row in rows:
        have = sorted((f.get("name", ""), f.get("sha256", "")) for f in row.files or [])
        if have == wanted:
            return row
    return None


def create_pending_version(
    *, session: Session, student: str, version: int, files: list[dict[str, Any]], **fields: Any
) -> ModelVersion:
    """Insert a 'pending' row (invisible to phones) holding the planned file manifest."""
    row = ModelVersion(student=student, version=version, files=files, status=PENDING, **fields)
    session.add(row)
    session.flush()  # surfaces a unique-constraint clash on (student, version) here
    return row


def mark_published(
    row: ModelVersion,
    *,
    session: Session,
    files: list[dict[str, Any]],
    hub_revision: str | None = None,
) -> ModelVersion:
    """Flip `row` to 'published' with its final file manifest; the caller commits."""
    row.files = files
    row.hub_revision = hub_revision
    row.status = PUBLISHED
    row.published_at = utcnow()
    session.flush()
    return row


def list_versions(*, session: Session, student: str | None = None) -> list[ModelVersion]:
    """Versions, newest first per student; all students when `student` is None."""
    query = select(ModelVersion).order_by(ModelVersion.student, ModelVersion.version.desc())
    if student is not None:
        query = query.where(ModelVersion.student == student)
    return list(session.scalars(query))
