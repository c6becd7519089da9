"""Shared fixtures: real databases (SQLite always, PostgreSQL when a server answers)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.db import Database
from storage.models import Base

# Tests never reach the Hub: everything they load is built locally or shipped by a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

POSTGRES_URL = os.environ.get(
    "DISTILLERY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_unreachable_reason() -> str | None:
    """None when the test server answers, else why PostgreSQL tests are skipped."""
    url = make_url(POSTGRES_URL)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            pass
    except OSError as exc:
        return f"no PostgreSQL server at {url.host}:{url.port} ({exc})"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped at the end."""
    reason = _postgres_unreachable_reason()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    admin_url = make_url(POSTGRES_URL)
    name = f"distillery_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    db.upgrade()
    yield db
    db.dispose()


def _truncate_all(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database in a temporary file."""
    db = Database(f"sqlite:///{tmp_path / 'distillery.db'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def postgres_db(_migrated_postgres: Database) -> Iterator[Database]:
    """The migrated PostgreSQL test database, emptied after each test."""
    yield _migrated_postgres
    _truncate_all(_migrated_postgres)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_db")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server on loopback (moto's server mode) for the shared artifact store."""
    pytest.importorskip("s3fs", reason="the s3 extra is not installed (pip install -e '.[s3]')")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket as every host would name it: the store URL plus AWS's own variables."""
    import fsspec

    for name, value in {
        "AWS_ACCESS_KEY_ID": "distillery-test",
        "AWS_SECRET_ACCESS_KEY": "distillery-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(bucket)
    url = f"s3://{bucket}/artifacts"
    monkeypatch.setenv("DISTILLERY_ARTIFACT_STORE", url)
    return url
