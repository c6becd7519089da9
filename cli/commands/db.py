"""`distillery db upgrade|current`: apply or show schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from storage.config import StorageSettings
from storage.db import Database

app = typer.Typer(help="Database schema migrations (Alembic) of $DISTILLERY_DATABASE_URL.")


@app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
) -> int:
    """Apply migrations up to REVISION and print the database's revision."""
    db = Database(StorageSettings.read().resolved_database_url())
    db.upgrade(revision)
    print(f"{db.url.render_as_string(hide_password=True)}: revision {db.current_revision()}")
    return 0


@app.command()
def current() -> int:
    """Print the database's schema revision."""
    db = Database(StorageSettings.read().resolved_database_url())
    print(f"{db.url.render_as_string(hide_password=True)}: revision {db.current_revision()}")
    return 0
