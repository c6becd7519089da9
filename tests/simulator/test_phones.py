"""The phone simulator against the real ASGI service: uploads land, repeats are duplicates."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from serving.app import create_app
from serving.settings import ServiceSettings
from simulator.phones import SimulationConfig, TaskPool, degrade, load_seed_tasks, simulate
from storage.db import Database
from storage.models import Interaction
from tasks.prepare import PrepareConfig, build_snapshot, load_snapshot


def run(db: Database, tmp_path: Path, config: SimulationConfig):
    app = create_app(ServiceSettings(), database=db, artifact_root=tmp_path / "art")

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://phones.test") as client:
            return await simulate(client, config)

    return asyncio.run(main())


def stored(db: Database) -> list[tuple]:
    with db.transaction() as session:
        query = select(
            Interaction.id,
            Interaction.prompt,
            Interaction.response,
            Interaction.correction,
            Interaction.rating,
            Interaction.model_name,
        ).order_by(Interaction.id)
        return [tuple(r) for r in session.execute(query)]


def test_uploads_land_through_the_api(db: Database, tmp_path: Path) -> None:
    config = SimulationConfig(phones=3, interactions=80, seed=7, batch_size=10, resend_rate=0.2)
    report = run(db, tmp_path, config)
    assert len(report.devices) == 3 and report.sent == 80
    assert report.accepted == 80 and report.duplicates == report.resent > 0
    rows = stored(db)
    assert len(rows) == 80 and len({r[0] for r in rows}) == 80
    assert {r[5] for r in rows} == {"phi-3-mini", "llama-3.2-1b", "tinyllama"}
    assert any(r[3] for r in rows) and any(r[4] is None for r in rows)
    assert {r[4] for r in rows if r[4] is not None} <= {1, 2, 3, 4, 5}
    # Only training-eligible records are uploaded, never the evaluation-only ones.
    seed_prompts = {t["prompt"] for t in load_seed_tasks()}
    assert all(any(r[1].startswith(p) for p in seed_prompts) for r in rows)

    # The same seed again: the same ids, so the service stores nothing twice.
    again = run(db, tmp_path, config)
    assert again.accepted == 0 and again.duplicates == 80 + again.resent
    assert len(stored(db)) == 80

    info = build_snapshot(
        db, config=PrepareConfig(), artifact_root=tmp_path / "art", settle_seconds=0
    )
    assert info.new_records == 80 and sum(info.split_sizes.values()) > 0
    assert sum(info.filter_stats["dropped"].values()) > 0
    targets = [r["target_source"] for ds in load_snapshot(info.path).values() for r in ds]
    assert "correction" in targets and "response" in targets


def test_same_seed_same_uploads(tmp_path: Path) -> None:
    config = SimulationConfig(phones=2, interactions=30, seed=3, pii_rate=0.5)
    contents = []
    for name in ("a", "b"):
        db = Database(f"sqlite:///{tmp_path / name}.db")
        db.upgrade()
        run(db, tmp_path / name, config)
        contents.append(stored(db))
        db.dispose()
    assert contents[0] == contents[1] and len(contents[0]) == 30
    assert any("@example.com" in r[1] or "4111" in r[1] or "555" in r[1] for r in contents[0])


def test_degrade_is_reproducible_and_differs() -> None:
    answer = "The quick brown fox jumps over the lazy dog near the river bank."
    first = degrade(answer, random.Random(1))
    assert first == degrade(answer, random.Random(1)) and first != answer


def test_users_ask_every_kind_of_task_about_equally_often() -> None:
    tasks = load_seed_tasks()
    in_pool = Counter(t["category"] for t in tasks)
    assert max(in_pool.values()) > 20 * min(in_pool.values())  # 108 arithmetic, 4 code tasks
    pool = TaskPool(tasks)
    rng = random.Random(0)
    drawn = Counter(pool.draw(rng)["category"] for _ in range(5000))
    assert set(drawn) == set(in_pool)
    assert max(drawn.values()) < 1.25 * min(drawn.values())
    # The same seed draws the same tasks.
    one, other = random.Random(5), random.Random(5)
    draws = [pool.draw(one)["prompt"] for _ in range(20)]
    assert draws == [pool.draw(other)["prompt"] for _ in range(20)] and len(set(draws)) > 10
