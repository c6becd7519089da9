"""Feed pass one: examine rows in-process, or in a reader process beside it (big windows)."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tasks.prepare.config import PrepareConfig
from tasks.prepare.examine import Examined, examine
from tasks.prepare.select import Window, iter_window

if TYPE_CHECKING:  # storage.db imports alembic: too slow for the reader process to load
    from storage.db import Database

CHUNK = 2000
Item = tuple[str, Examined | str]


def examined_rows(
    db: Database, window: Window, config: PrepareConfig, pii: dict[str, int], *, process: bool
) -> Iterator[Item]:
    """(record id, examined record or drop reason) in seq order; PII counts land in `pii`.

    With `process`, a spawned reader process streams and examines the rows while this one
    does the ordered steps: two cores instead of one on big windows. Same results either way.
    """
    if not process:
        with db.transaction() as session:
            for row in iter_window(session, window):
                yield str(row.id), examine(row, config, pii)
        return
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe beside Prefect's threads
    receiver, sender = ctx.Pipe(duplex=False)
    url = db.url.render_as_string(hide_password=False)
    worker = ctx.Process(target=_read, args=(url, window, config, sender), daemon=True)
    worker.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                raise RuntimeError(
                    f"prepare reader process died (exit {worker.exitcode})"
                ) from None
            kind, payload = message
            if kind == "rows":
                yield from payload
            elif kind == "error":
                raise RuntimeError(f"prepare reader process failed:\n{payload}")
            else:
                for name, count in payload.items():
                    pii[name] = pii.get(name, 0) + count
                break
    finally:
        receiver.close()
        worker.join(timeout=30)
        if worker.is_alive():
            worker.terminate()


def _read(url: str, window: Window, config: PrepareConfig, sender: Connection) -> None:
    """Reader process: stream the window, examine each row, send chunks, then the PII counts."""
    try:
        # A bare engine: storage.db pulls in alembic, seconds of import for a read-only reader.
        engine = create_engine(url)
        pii: dict[str, int] = {}
        chunk: list[Item] = []
        with Session(engine) as session, session.begin():
            for row in iter_window(session, window):
                chunk.append((str(row.id), examine(row, config, pii)))
                if len(chunk) >= CHUNK:
                    sender.send(("rows", chunk))
                    chunk = []
        sender.send(("rows", chunk))
        sender.send(("done", pii))
        engine.dispose()
    except BaseException:  # the parent must learn why, not just see a closed pipe
        sender.send(("error", traceback.format_exc()))
    finally:
        sender.close()
