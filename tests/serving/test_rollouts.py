"""Staged rollouts: stable cohorts, the manifest per device, every step in the audit trail."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from storage.registry import RegistryError, channels, rollouts
from storage.registry.rollouts import cohort_bucket, in_cohort
from tests.serving.catalog_rows import add_version, write_artifact

LATEST = "/api/models/mobile/latest"
DEVICES = [f"device-{i:04d}" for i in range(200)]


def test_a_cohort_is_stable_sized_and_kept_when_widened() -> None:
    ids = [f"phone-{i}" for i in range(10_000)]
    for percent in (1, 10, 50):
        inside = sum(in_cohort("smol", d, 7, percent) for d in ids)
        p = percent / 100
        sd = math.sqrt(10_000 * p * (1 - p))
        assert abs(inside - 10_000 * p) < 4 * sd, (percent, inside)  # binomial, 4 sigma
    # The same device, asked again (another worker, a restart), gets the same answer.
    assert [cohort_bucket("smol", d, 7) for d in ids[:50]] == [
        cohort_bucket("smol", d, 7) for d in ids[:50]
    ]
    # Widening keeps everyone who was in; another rollout draws another cohort.
    assert all(in_cohort("smol", d, 7, 50) for d in ids if in_cohort("smol", d, 7, 10))
    overlap = sum(in_cohort("smol", d, 7, 10) and in_cohort("smol", d, 8, 10) for d in ids)
    assert overlap < 200  # independent draws share about 1 % of devices, not 10 %


@pytest.fixture
def two_versions(db: Database, artifact_root: Path) -> Database:
    for version in (1, 2):
        rel = f"models/smol/{version}/smol.Q8_0.gguf"
        entry = write_artifact(artifact_root, rel, b"v%d" % version * 64)
        add_version(db, "smol", version, [entry], stable=version == 1)
    return db


async def _answers(db: Database, root: Path, settings: ServiceSettings) -> dict[str, tuple]:
    """device -> (version, channel, etag) from a freshly built service (as after a restart)."""
    app = create_app(settings=settings, database=db, artifact_root=root)
    transport = httpx.ASGITransport(app=app)
    answers = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for device in DEVICES:
            got = await client.get(LATEST, params={"device_id": device})
            assert got.status_code == 200, got.text
            [model] = got.json()["models"]
            answers[device] = (model["version"], model["channel"], got.headers["etag"])
        plain = (await client.get(LATEST)).json()["models"][0]  # no device id: stable
        assert plain["channel"] == "stable"
        answers["(no device id)"] = (plain["version"], plain["channel"], "")
    return answers


@pytest.mark.anyio
async def test_the_manifest_serves_the_cohort_its_version_on_every_restart(
    two_versions: Database, artifact_root: Path, settings: ServiceSettings
) -> None:
    db = two_versions
    started = rollouts.start(db, "smol", 2, 30, reason="canary", actor="alice")
    assert (started.version, started.stable_version, started.percent) == (2, 1, 30)
    first = await _answers(db, artifact_root, settings)
    cohort = {d for d in DEVICES if in_cohort("smol", d, started.id, 30)}
    assert 30 < len(cohort) < 90  # about 30 % of 200
    assert {d for d, (v, c, _) in first.items() if (v, c) == (2, "canary")} == cohort
    stable = {d for d, (v, c, _) in first.items() if (v, c) == (1, "stable")}
    assert stable == set(DEVICES) - cohort | {"(no device id)"}
    assert len({first[d][2] for d in DEVICES}) == 2  # cohort membership is in the ETag
    assert await _answers(db, artifact_root, settings) == first  # restarted: the same answers

    with pytest.raises(RegistryError, match="already has a rollout"):
        rollouts.start(db, "smol", 2, 10)
    with pytest.raises(RegistryError, match="more than that"):
        rollouts.widen(db, "smol", 20)
    rollouts.widen(db, "smol", 60, reason="no regression", actor="watcher")
    wider = await _answers(db, artifact_root, settings)
    assert all(wider[d][0] == 2 for d in cohort)  # those already in stay in
    rollouts.abort(db, "smol", reason="thumbs-down up", actor="watcher")
    assert {v for v, _, _ in (await _answers(db, artifact_root, settings)).values()} == {1}

    again = rollouts.start(db, "smol", 2, 10, actor="alice")
    assert again.id != started.id
    done = rollouts.promote(db, "smol", reason="held for a week", actor="alice")
    assert done.status == "promoted" and done.stable_version == 2
    assert {(v, c) for v, c, _ in (await _answers(db, artifact_root, settings)).values()} == {
        (2, "stable")
    }
    trail = [(e.channel, e.action, e.actor) for e in channels.history(db, "smol")]
    assert trail[-6:] == [
        ("canary", "canary", "alice"),
        ("canary", "widen", "watcher"),
        ("canary", "abort", "watcher"),
        ("canary", "canary", "alice"),
        ("stable", "promote", "alice"),
        ("canary", "promote", "alice"),
    ], trail
