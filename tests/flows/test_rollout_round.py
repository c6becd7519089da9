"""A rollout on a simulated fleet, end to end: phones ask the real service what to run, the
cohort gets the canary, both upload, and one pass of the rollout watcher decides."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cli.main import main
from flows.rollout_watch import rollout_watch
from serving.app import create_app
from serving.settings import ServiceSettings
from simulator.rollout import RolloutRoundConfig, RolloutRoundReport, rollout_round
from storage.db import Database, get_database
from storage.models import Interaction
from storage.registry import channels, rollouts
from storage.registry.rollouts import in_cohort
from tests.serving.catalog_rows import add_version, write_artifact

LATEST = "/api/models/mobile/latest"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """smol v1 stable and v2 on a 10 % canary, in the database the watcher flow reads."""
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    db = get_database()
    for version in (1, 2):
        entry = write_artifact(
            tmp_path, f"models/smol/{version}/smol.Q8_0.gguf", b"%d" % version * 64
        )
        add_version(db, "smol", version, [entry], stable=version == 1)
    rollouts.start(db, "smol", 2, 10, actor="pipeline")
    yield db
    db.dispose()


def _app(db: Database, root: Path) -> Any:
    settings = ServiceSettings(
        _env_file=None,
        manifest_cache_seconds=0,
        allowed_hosts=["testserver"],
        registration_rate_limit="1000/minute",  # the whole fleet registers from one address
    )
    return create_app(settings=settings, database=db, artifact_root=root)


def _round(db: Database, root: Path, drop: float, seed: int = 0) -> RolloutRoundReport:
    async def go() -> RolloutRoundReport:
        transport = httpx.ASGITransport(app=_app(db, root))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            config = RolloutRoundConfig(student="smol", happiness_drop=drop, seed=seed)
            return await rollout_round(client, config)

    return asyncio.run(go())


def _stored(db: Database) -> dict[str, set[str]]:
    """model_version -> the devices that uploaded feedback on it."""
    with db.transaction() as session:
        rows = session.execute(
            select(Interaction.model_version, Interaction.device_id).where(
                Interaction.model_name == "smol"
            )
        )
        stored: dict[str, set[str]] = {}
        for version, device in rows:
            stored.setdefault(version, set()).add(device)
        return stored


def _check_cohorts(db: Database, report: RolloutRoundReport) -> None:
    """The manifest served the canary to exactly the cohort, and uploads say so."""
    rollout = rollouts.rollouts(db, "smol")[0]
    canary, stable = report.cohorts["canary"], report.cohorts["stable"]
    assert (canary.version, stable.version) == (2, 1)
    assert canary.phones >= 4 and stable.phones > canary.phones
    for device, channel in report.served.items():
        assert (channel == "canary") == in_cohort("smol", device, rollout.id, 10), device
    cohort = {d for d, c in report.served.items() if c == "canary"}
    assert _stored(db) == {"2": cohort, "1": set(report.served) - cohort}
    assert canary.accepted == canary.sent == 25 * canary.phones
    with db.transaction() as session:
        count = select(func.count()).where(Interaction.model_version == "2")
        assert session.scalar(count) == canary.sent


def test_a_less_happy_canary_is_rolled_back(
    prefect_harness: None, store: Database, tmp_path: Path
) -> None:
    report = _round(store, tmp_path, drop=0.15)
    _check_cohorts(store, report)
    canary, stable = report.cohorts["canary"], report.cohorts["stable"]
    assert canary.mean_rating is not None and stable.mean_rating is not None
    assert stable.mean_rating - canary.mean_rating > 0.4  # dealt: the drop, not luck

    [row] = rollout_watch()
    assert (row.action, row.percent, row.canary, row.stable) == ("rollback", 0, 2, 1), row
    assert rollouts.rollouts(store)[0].status == "aborted"
    abort = channels.history(store, "smol", channel="canary")[-1]
    assert (abort.action, abort.actor) == ("abort", "rollout-watch")
    assert abort.reason == row.line and "clearly worse" in abort.reason
    assert "mean_rating" in abort.reason or "thumbs_down" in abort.reason

    async def poll(device: str) -> tuple[int, str]:
        transport = httpx.ASGITransport(app=_app(store, tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            entry = (await c.get(LATEST, params={"device_id": device})).json()["models"][0]
            return entry["version"], entry["channel"]

    cohort_device = next(d for d, c in report.served.items() if c == "canary")
    assert asyncio.run(poll(cohort_device)) == (1, "stable")  # rolled back: stable again


def test_an_equally_liked_canary_is_widened_not_rolled_back(
    prefect_harness: None, store: Database, tmp_path: Path
) -> None:
    report = _round(store, tmp_path, drop=0.0, seed=5)
    _check_cohorts(store, report)
    [row] = rollout_watch()
    # Enough answers to step (50), not yet to promote (200): more devices, to learn faster.
    assert (row.action, row.percent) == ("widen", 50), row
    assert "10 % → 50 %" in row.line and "clearly worse" not in row.line
    info = rollouts.rollouts(store)[0]
    assert (info.status, info.percent) == ("active", 50)


def test_an_operator_round_and_the_demo_round_over_live_http(
    prefect_harness: None,
    store: Database,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from demo.run import DemoOptions, Progress, free_port, running_service

    with running_service(free_port(), tmp_path / "service.log") as url:
        # `distillery simulate --rollout`: the student is the manifest's only one.
        assert main(["simulate", "--url", url, "--rollout", "--seed", "3"]) == 0
        out = capsys.readouterr().out
        assert "phones ran smol:" in out and "smol v2 (canary): " in out, out
        assert "smol v1 (stable): " in out and "next: distillery rollout status smol" in out

        from demo.run import demo_rollout

        rows = demo_rollout(url, DemoOptions(student="smol"), seed=4, progress=Progress())
    out = capsys.readouterr().out
    assert [r.action for r in rows] == ["rollback"], out
    assert "▶ rollout round: phones poll the manifest and upload feedback" in out
    assert "smol v2 on 10 % of devices, v1 stable; 15% of the canary's answers rated 1-2" in out
    assert f"  {rows[0].line}" in out
    assert "rollout 1: aborted, every device back on stable v1 (distillery rollout status)" in out
