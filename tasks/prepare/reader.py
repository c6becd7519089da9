"""Feed pass one: examine rows in-process, or in reader processes beside it (big windows).

Readers split the seq range into blocks of BLOCK seq values, reader k taking the blocks
j with j % n == k; each sends exactly one message per block it owns, in order, and this
process receives block j from reader j % n. So records arrive in seq order, as in-process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from storage.repo.interactions import fetch_by_seq, stream_interactions
from tasks.prepare.config import PrepareConfig
from tasks.prepare.examine import Examined, examine
from tasks.prepare.select import Window, iter_window

if TYPE_CHECKING:  # storage.db imports alembic: too slow for a reader process to load
    from storage.db import Database

BLOCK = 2000
Item = tuple[str, Examined | str]


def examined_rows(
    db: Database, window: Window, config: PrepareConfig, pii: dict[str, int], *, readers: int
) -> Iterator[Item]:
    """(record id, examined record or drop reason) in seq order; PII counts land in `pii`.

    With `readers` > 0, spawned processes stream and examine the rows while this one does
    the ordered steps (dedupe, split, writing). Same results either way.
    """
    if readers <= 0:
        with db.transaction() as session:
            for row in iter_window(session, window):
                yield str(row.id), examine(row, config, pii)
        return
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe beside Prefect's threads
    url = db.url.render_as_string(hide_password=False)
    pipes, workers = [], []
    for index in range(readers):
        receiver, sender = ctx.Pipe(duplex=False)
        args = (url, window, config, index, readers, sender)
        workers.append(ctx.Process(target=_read, args=args, daemon=True))
        workers[-1].start()
        sender.close()
        pipes.append(receiver)
    try:
        yield from _receive(pipes[0], workers[0])  # the replayed rows come first
        for block in _blocks(window):
            yield from _receive(pipes[block % readers], workers[block % readers])
        for pipe, worker in zip(pipes, workers, strict=True):
            for name, count in _receive(pipe, worker, final=True).items():
                pii[name] = pii.get(name, 0) + count
    finally:
        for pipe, worker in zip(pipes, workers, strict=True):
            pipe.close()
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()


def reader_available() -> bool:
    """False when a spawned process could not re-import __main__ (code run from stdin)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def _blocks(window: Window) -> range:
    return range((window.after + 1) // BLOCK, window.upto // BLOCK + 1)


def _receive(pipe: Connection, worker: Any, *, final: bool = False) -> Any:
    try:
        kind, payload = pipe.recv()
    except EOFError:
        raise RuntimeError(f"prepare reader process died (exit {worker.exitcode})") from None
    if kind == "error":
        raise RuntimeError(f"prepare reader process failed:\n{payload}")
    if (kind == "done") != final:
        raise RuntimeError(f"prepare reader protocol error: got {kind!r}")
    return payload


def _read(
    url: str, window: Window, config: PrepareConfig, index: int, count: int, sender: Connection
) -> None:
    """Reader process: examine its blocks of the window, one message per block, then PII."""
    try:
        # A bare engine: storage.db pulls in alembic, seconds of import for a read-only reader.
        engine = create_engine(url)
        pii: dict[str, int] = {}
        with Session(engine) as session, session.begin():
            if index == 0:
                replay = fetch_by_seq(session=session, seqs=window.replay_seqs)
                sender.send(("rows", [(str(r.id), examine(r, config, pii)) for r in replay]))
            mine = iter([b for b in _blocks(window) if b % count == index])
            chunk: list[Item] = []
            current = next(mine, None)
            rows = stream_interactions(
                session=session, after=window.after, upto=window.upto, stripe=(BLOCK, count, index)
            )
            for row in rows:
                while current != row.seq // BLOCK:  # finished (or empty) blocks before this row
                    sender.send(("rows", chunk))
                    current, chunk = next(mine, None), []
                chunk.append((str(row.id), examine(row, config, pii)))
            while current is not None:
                sender.send(("rows", chunk))
                current, chunk = next(mine, None), []
        sender.send(("done", pii))
        engine.dispose()
    except BaseException:  # the parent must learn why, not just see a closed pipe
        sender.send(("error", traceback.format_exc()))
    finally:
        sender.close()
