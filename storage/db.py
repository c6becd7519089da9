"""One engine and sessionmaker per database URL, SQLite tuned for concurrent writers, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.config import StorageSettings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database:
    """An engine and its sessions; `transaction()` is the unit of work callers own."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _create_engine(url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error.

        On SQLite, `write=True` starts with BEGIN IMMEDIATE so a read-then-write unit takes the
        write lock up front and waits (busy_timeout) instead of failing on lock upgrade.
        """
        bind = self.engine.execution_options(sqlite_immediate=True) if write else self.engine
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to `revision`."""
        from alembic import command  # alembic is imported only where migrations are touched

        command.upgrade(alembic_config(self), revision)

    def current_revision(self) -> str | None:
        """The schema revision recorded in the database, None when not migrated."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision the code ships."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config(self)).get_current_head()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def alembic_config(db: Database) -> Config:
    """An Alembic config pointing at the packaged migrations and this database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = db.engine
    return cfg


def _create_engine(url: str, *, echo: bool) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 16
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs["pool_size"] = 10
    kwargs["max_overflow"] = 20
    return create_engine(url, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    """WAL, sane durability and our own BEGIN statements (pysqlite's are unreliable)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA temp_store=MEMORY")
        # 32 MB of page cache per connection (SQLite's default is 2 MB): the interactions'
        # random-UUID key index outgrows 2 MB at ~100k rows, and every pooled connection
        # then reads its pages from the OS again (bench/ingest.py, later rounds).
        cur.execute("PRAGMA cache_size=-32768")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_databases: dict[str, Database] = {}


def get_database(
    settings: StorageSettings | None = None, *, migrate: bool | None = None
) -> Database:
    """The process-wide Database for the configured URL, migrated if it is embedded SQLite.

    `migrate=None` applies migrations automatically only for SQLite (the zero set-up default);
    server databases are migrated explicitly with `distillery db upgrade`.
    """
    settings = settings or StorageSettings.read()
    url = settings.resolved_database_url()
    db = _databases.get(url)
    if db is None:
        db = Database(url)
        _databases[url] = db
        if migrate if migrate is not None else db.is_sqlite:
            db.upgrade()
    return db
