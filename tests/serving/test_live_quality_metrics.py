"""Live quality per served version on /metrics: the values live_quality computes, bounded
labels, one database read per cache period, and an answer when the database fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from storage.registry import rollouts
from storage.repo.live_quality import LiveQuality
from tests.serving.catalog_rows import add_version, write_artifact
from tests.tasks.prepare.conftest import insert, make_row

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _rows(start: int, version: str, ratings: list[int | None], **extra: Any) -> list[dict]:
    return [
        make_row(
            start + i,
            model_name="smol",
            model_version=version,
            rating=rating,
            correction="A better answer." if i % 4 == 0 else None,
            response="x" * (10 + i),
            uncertainty={"mean_entropy": 0.5 + i / 10} if i % 3 == 0 else None,
            **extra,
        )
        for i, rating in enumerate(ratings)
    ]


@pytest.fixture
def fleet(db: Database, artifact_root: Path) -> Database:
    """smol v1 stable, v2 on a 10 % canary, v3 published but neither; feedback on each, on a
    phone model the registry does not know, and on v1 from before the 14-day window."""
    for version in (1, 2, 3):
        rel = f"models/smol/{version}/smol.Q8_0.gguf"
        entry = write_artifact(artifact_root, rel, b"v%d" % version * 64)
        add_version(db, "smol", version, [entry], stable=version == 1)
    rollouts.start(db, "smol", 2, 10, actor="alice")
    now = datetime.now(UTC)
    insert(db, _rows(0, "1", [5, 4, 5, 2, 1, 5, 4, None] * 5), received_at=now - timedelta(days=1))
    insert(db, _rows(100, "2", [1, 2, 3, 4, 5] * 6), device="p2", received_at=now)
    insert(db, _rows(200, "3", [5] * 7), device="p3", received_at=now)
    insert(db, [make_row(300 + i) for i in range(9)], device="p4", received_at=now)
    old = now - timedelta(days=30)
    insert(db, _rows(400, "1", [1] * 11), device="p5", received_at=old)
    return db


def _scrape_text(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape(client: httpx.AsyncClient) -> Samples:
    resp = await client.get("/metrics")
    assert resp.status_code == 200, resp.text
    return _scrape_text(resp.text)


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def test_metrics_show_what_live_quality_computes_for_served_versions(
    fleet: Database, client: httpx.AsyncClient
) -> None:
    got = await _scrape(client)
    with fleet.transaction() as session:
        live = {q.model_version: q for q in LiveQuality.read(session, model_name="smol").versions()}
    gauges = {
        "distillery_live_mean_rating": "mean_rating",
        "distillery_live_thumbs_down_share": "thumbs_down",
        "distillery_live_correction_share": "corrections",
        "distillery_live_answer_chars": "answer_chars",
        "distillery_live_chat_entropy": "mean_entropy",
    }
    for version, channel in (("1", "stable"), ("2", "canary")):
        served = _labels(student="smol", version=version, channel=channel)
        quality = live[version]
        assert got[("distillery_live_interactions", served)] == quality.interactions
        assert got[("distillery_live_ratings", served)] == quality.mean_rating.n  # type: ignore[union-attr]
        for gauge, key in gauges.items():
            estimate = quality.metrics()[key]
            assert estimate is not None, (version, key)
            assert got[(gauge, served)] == pytest.approx(estimate.value, rel=1e-12)
            for bound, value in (("low", estimate.low), ("high", estimate.high)):
                labels = served | {("metric", key), ("bound", bound)}
                assert got[("distillery_live_quality_interval", labels)] == pytest.approx(
                    value, rel=1e-12
                )
    # The numbers themselves, counted by hand: the window leaves the month-old rows out.
    stable = _labels(student="smol", version="1", channel="stable")
    canary = _labels(student="smol", version="2", channel="canary")
    assert got[("distillery_live_interactions", stable)] == 40
    assert got[("distillery_live_ratings", stable)] == 35
    assert got[("distillery_live_mean_rating", stable)] == pytest.approx(26 / 7)
    assert got[("distillery_live_interactions", canary)] == 30
    assert got[("distillery_live_mean_rating", canary)] == pytest.approx(3.0)
    assert got[("distillery_live_thumbs_down_share", canary)] == pytest.approx(0.4)
    assert got[("distillery_live_correction_share", canary)] == pytest.approx(8 / 30)
    assert got[("distillery_rollout_percent", _labels(student="smol", version="2"))] == 10
    assert got[("distillery_live_quality_up", frozenset())] == 1
    # Bounded labels: only the stable and the canary version, never v3 or phi-3-mini.
    versions = {
        dict(labels).get("version")
        for name, labels in got
        if name.startswith("distillery_live_") and "version" in dict(labels)
    }
    assert versions == {"1", "2"}
    assert not any(dict(labels).get("student") == "phi-3-mini" for _, labels in got)


async def test_one_read_per_cache_period_however_many_scrapes(
    fleet: Database, app: FastAPI, client: httpx.AsyncClient
) -> None:
    collector = app.state.service.metrics.live_quality
    now = [1000.0]
    collector.clock = lambda: now[0]
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "interactions" in statement:
            reads.append(statement)

    event.listen(fleet.engine, "before_cursor_execute", count)
    try:
        canary = ("distillery_live_interactions",
                  _labels(student="smol", version="2", channel="canary"))  # fmt: skip
        assert (await _scrape(client))[canary] == 30
        first = len(reads)
        assert first >= 1
        insert(fleet, _rows(500, "2", [1] * 5), device="p6", received_at=datetime.now(UTC))
        now[0] += collector.cache_seconds - 0.5
        storm = await asyncio.gather(*(_scrape(client) for _ in range(20)))
        assert {s[canary] for s in storm} == {30}  # served from the cache ...
        assert len(reads) == first  # ... without a query
        now[0] += 1.0
        storm = await asyncio.gather(*(_scrape(client) for _ in range(20)))
        assert {s[canary] for s in storm} == {35}  # read again once the period passed ...
        assert len(reads) == 2 * first  # ... once, for all twenty scrapes
    finally:
        event.remove(fleet.engine, "before_cursor_execute", count)


async def test_metrics_answer_when_live_quality_cannot_be_read(
    tmp_path: Path, settings: ServiceSettings, artifact_root: Path
) -> None:
    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every read fails
    app = create_app(settings=settings, database=unmigrated, artifact_root=artifact_root)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/metrics")
    assert resp.status_code == 200
    got = _scrape_text(resp.text)
    assert got[("distillery_live_quality_up", frozenset())] == 0
    assert ("distillery_feedback_uploads_total", frozenset()) in got  # the rest is there
    assert not any(name.startswith("distillery_live_interactions") for name, _ in got)
    unmigrated.dispose()


async def test_a_version_without_feedback_shows_zero_interactions_and_no_quality(
    db: Database, artifact_root: Path, client: httpx.AsyncClient
) -> None:
    entry = write_artifact(artifact_root, "models/smol/1/smol.Q8_0.gguf", b"v" * 64)
    add_version(db, "smol", 1, [entry])
    got = await _scrape(client)
    stable = _labels(student="smol", version="1", channel="stable")
    assert got[("distillery_live_interactions", stable)] == 0
    assert got[("distillery_live_ratings", stable)] == 0
    assert ("distillery_live_mean_rating", stable) not in got  # absent, not a made-up 0
    assert not any(name == "distillery_rollout_percent" for name, _ in got)
