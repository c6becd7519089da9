"""Alembic environment: runs migrations on the engine handed in by storage.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from storage.config import StorageSettings
from storage.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(
    StorageSettings.read().resolved_database_url()
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
