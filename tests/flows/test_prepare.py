"""The prepare flow under a real (test-harness) Prefect server: snapshot plus artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
)
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import ArtifactSort

from flows.prepare import prepare_flow
from storage.db import Database
from tasks.prepare import load_snapshot
from tests.tasks.prepare.conftest import insert, make_row


async def artifacts(key: str, flow_run_id: UUID) -> list[Artifact]:
    """The artifacts with `key` made by one flow run (other tests share the harness server)."""
    async with get_client() as client:
        # Every field explicit: this server version refuses the nulls the client sends otherwise.
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=50,
            offset=0,
        )


def test_prepare_flow_builds_snapshot_and_publishes_stats(
    prefect_harness: None, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    db = Database(url)
    db.upgrade()
    insert(db, [make_row(i) for i in range(40)] + [make_row(90, rating=99), make_row(91, rating=1)])
    state = prepare_flow(
        config={"seed": 3}, database_url=url, artifact_root=str(tmp_path / "art"), return_state=True
    )
    result = state.result()
    assert result.skipped_reason is None and result.new_records == 42
    assert sum(result.split_sizes.values()) == 40
    assert sum(len(d) for d in load_snapshot(result.path).values()) == 40
    again = prepare_flow(config={"seed": 3}, database_url=url, artifact_root=str(tmp_path / "art"))
    assert again.skipped_reason and again.skipped_reason.startswith("no new interactions")
    assert again.snapshot_id == result.snapshot_id

    run_id = state.state_details.flow_run_id
    tables = asyncio.run(artifacts("prepare-filter-stats", run_id))
    notes = asyncio.run(artifacts("prepare-snapshot", run_id))
    assert len(tables) == 1 and len(notes) == 1
    assert "invalid_rating" in str(tables[0].data)
    assert "low_rating_no_correction" in str(tables[0].data)
    assert any(str(result.fingerprint) in str(a.data) for a in notes)
    db.dispose()
