"""Many hosts: each with its own artifact root, sharing one database and one S3 store.

Host A runs the first cycle; host B, which has none of A's files, runs the second and must
warm-start from v1's adapter and gate against v1, both fetched from the store; a service on
a third root serves v2's files from the store; a fourth host whose store lost an adapter
gets an error naming its URI, never a silent cold start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import fsspec
import httpx
import pytest
from sqlalchemy import select

from flows.perpetual import perpetual_cycle
from serving.app import create_app
from serving.settings import ServiceSettings
from storage.artifact_store import artifact_store
from storage.db import Database, get_database
from storage.models import ModelVersion, TrainingRun
from tasks.cycle import MissingAdapterError, run_adapter
from tests.flows.test_perpetual import _rows, seed_rows, tiny_config
from tests.tasks.prepare.conftest import insert

STUDENT = "tiny-llama-student"


@pytest.fixture
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The one database every host names: PostgreSQL when a server answers, else a file."""
    try:
        db: Database = request.getfixturevalue("postgres_db")
        yield db.url.render_as_string(hide_password=False)
    except pytest.skip.Exception:
        yield f"sqlite:///{tmp_path / 'shared.db'}"


def _be_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, url: str) -> Database:
    """Switch this process to host `name`: its own data dir and artifact root, the shared rest."""
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / name))
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", url)
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    db = get_database(migrate=True)
    assert artifact_store().local_root == (tmp_path / name / "artifacts").resolve()
    return db


def _version(db: Database, number: int) -> tuple[ModelVersion, TrainingRun]:
    with db.transaction() as session:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.student == STUDENT, ModelVersion.version == number
            )
        )
        assert row is not None
        run = session.get(TrainingRun, row.training_run_id)
        assert run is not None
        return row, run


def test_a_cycle_on_another_host_warm_starts_and_gates_on_the_stable_version(
    prefect_harness: None,
    s3_store: str,
    shared_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tiny_config(students=[STUDENT])
    db = _be_host(monkeypatch, tmp_path, "host-a", shared_url)
    insert(db, seed_rows(0, 40))
    first = perpetual_cycle(config, return_state=True)
    assert _rows(first)[STUDENT].status == "published", first.message
    v1, v1_run = _version(db, 1)
    v1_key = artifact_store().key(Path(str(v1_run.adapter_path)))

    db = _be_host(monkeypatch, tmp_path, "host-b", shared_url)
    b_root = artifact_store().local_root
    assert not (b_root / v1_key).exists()  # host B starts with none of A's files
    insert(db, seed_rows(40, 30), device="phone-2")
    second = perpetual_cycle(config, return_state=True)
    assert _rows(second)[STUDENT].status == "published", second.message
    v2, v2_run = _version(db, 2)
    v2_key = artifact_store().key(Path(str(v2_run.adapter_path)))
    # Both cycles' evaluation reports are readable from any host: in the store.
    store_fs, store_base = fsspec.core.url_to_fs(s3_store)
    reports = store_fs.glob(f"{store_base}/eval/runs/{STUDENT}-*/report/report.md")
    assert len(reports) == 2, reports
    # Warm-started from v1's adapter, fetched from the store into B's own root...
    assert v2_run.config["warm_start_adapter"] == v1_key  # its key, not B's path
    assert v2_run.metrics["warm_start"] == f"continues {v1_key}"
    assert (b_root / v1_key / "adapter_config.json").is_file()
    # ...and gated against v1 (not the base): it had to improve on the stable version.
    assert v2.gate["rule"] == "stable", v2.gate
    # The rows hold keys relative to the store, whichever host wrote them: read on B, both
    # runs' adapters are under B's root (v1_run above was read on A, under A's).
    for number in (1, 2):
        assert str(_version(db, number)[1].adapter_path).startswith(f"{b_root}/runs/")
    assert str(v1_run.adapter_path).startswith(str(tmp_path / "host-a"))

    # A service on a third root serves v2's files from the store, sha256 and Range intact.
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "host-c"))
    c_root = (tmp_path / "host-c" / "artifacts").resolve()
    settings = ServiceSettings(_env_file=None, allowed_hosts=["testserver"])
    app = create_app(settings=settings, database=db, artifact_root=c_root)
    transport = httpx.ASGITransport(app=app)

    async def download() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            latest = (await client.get("/api/models/mobile/latest")).json()
            [model] = latest["models"] if "models" in latest else [latest]
            assert model["student"] == STUDENT and model["version"] == 2, latest
            assert model["files"]
            for entry in model["files"]:  # merged, and adapter + base where deltas ship
                got = await client.get(entry["url"])
                assert got.status_code == 200, (entry, got.text)
                assert hashlib.sha256(got.content).hexdigest() == entry["sha256"]
                part = await client.get(entry["url"], headers={"Range": "bytes=0-9"})
                assert part.status_code == 206 and part.content == got.content[:10]

    import anyio

    anyio.run(download)
    assert any(c_root.rglob("*.gguf"))  # fetched once into the service's own root

    # The store lost v2's adapter: a host without a copy gets its URI, not a cold start.
    fs, base = fsspec.core.url_to_fs(s3_store)
    fs.rm(f"{base}/{v2_key}", recursive=True)
    db = _be_host(monkeypatch, tmp_path, "host-d", shared_url)
    _, v2_run = _version(db, 2)
    with pytest.raises(MissingAdapterError, match=f"{s3_store}/{v2_key}"):
        run_adapter(v2_run)
