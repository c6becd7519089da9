"""Feedback ingest over real HTTP: interactions/s of the live service beside two baselines.

Both servers run under uvicorn in a subprocess on loopback, receive the same pre-built
requests (batches of 100 interactions) on the same keep-alive connections, in the same run.
The bare endpoint only parses the JSON. The raw insert writes the same rows straight into
the same database with SQLAlchemy Core executemany, once with a commit per request-sized
batch and once with a single commit: the database's own speed, measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from _common import REPO_ROOT, emit, raw_request, run_load, server, server_cpu_s

WORDS = "the model answered a question about cooking travel code math history and music".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build_batches(count: int, batch: int, seed: int) -> list[list[dict]]:
    """`count` batches of `batch` fresh interactions each (~100 B prompt, ~400 B answer)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        items = [
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "model_name": "smollm2-student",
                "model_version": "3",
                "prompt": text(rng, 16),
                "response": text(rng, 64),
                "correction": text(rng, 40) if rng.random() < 0.2 else None,
                "rating": rng.randint(1, 5),
                "latency_ms": rng.randint(50, 2000),
                "category": "qa",
                "created_at": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
            }
            for _ in range(batch)
        ]
        out.append(items)
    return out


def build_requests(device_id: str, token: str, count: int, batch: int, seed: int) -> list[bytes]:
    """`count` upload requests of `batch` fresh interactions each."""
    now = datetime.now(UTC).isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    return [
        raw_request(
            "POST",
            "/api/training/feedback",
            orjson.dumps({"device_id": device_id, "interactions": items, "timestamp": now}),
            headers,
        )
        for items in build_batches(count, batch, seed)
    ]


def raw_insert(url: str, device_id: str, batches: list[list[dict]], per_batch: bool) -> float:
    """Rows/s of a DB-API executemany INSERT of these rows (fresh ids) into `url`.

    Values are converted to the stored form (the columns' own bind processors) before the
    clock starts, so only the database and its driver are timed.
    """
    from storage.db import Database
    from storage.models import FeedbackBatch, Interaction
    from storage.repo.feedback import FIELDS

    db = Database(url)
    batch_id = uuid.uuid4()
    with db.transaction(write=True) as session:
        session.add(FeedbackBatch(id=batch_id, device_id=device_id))
    table: Any = Interaction.__table__
    columns = (*FIELDS, "device_id", "batch_id", "received_at")
    dialect = db.engine.dialect
    procs = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
    now = datetime.now(UTC)
    prepared = []
    for items in batches:
        rows = []
        for item in items:
            values = {
                **item,
                "id": uuid.uuid4(),
                "client_created_at": datetime.fromisoformat(item["created_at"]),
                "device_id": device_id,
                "batch_id": batch_id,
                "received_at": now,
                "source": "phone",
                "consent": "train",
            }
            row = [values.get(name) for name in columns]
            rows.append(tuple(v if p is None else p(v) for v, p in zip(row, procs, strict=True)))
        prepared.append(rows)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO interactions ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        begin = dialect.name == "sqlite"  # pysqlite runs in autocommit here (storage.db)
        start = time.perf_counter()
        for index, rows in enumerate(prepared):
            if begin and (per_batch or index == 0):
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows)
            if per_batch:
                raw.commit() if not begin else cursor.execute("COMMIT")
        if not per_batch:
            raw.commit() if not begin else cursor.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        raw.close()
        db.dispose()
    return sum(len(rows) for rows in prepared) / elapsed


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server `server_url` names, dropped afterwards.

    The same seeds give the same ids on every run: in a reused database every upload would
    count as a duplicate.
    """
    if not server_url:
        yield ""
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"distillery_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a short run (fewer requests, 1 round)"
    )
    parser.add_argument("--requests", type=int, default=None, help="requests per round")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--database-url",
        default="",
        help="default: a fresh SQLite file; a PostgreSQL URL: a fresh database on that server",
    )
    parser.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="uvicorn's HTTP parser for both servers (h11 with the asyncio loop: plain uvicorn)",
    )
    args = parser.parse_args()
    count = args.requests or (40 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as database_url:
        args.database_url = database_url
        env = {
            "DISTILLERY_DATA_DIR": tmp,
            "DISTILLERY_DATABASE_URL": args.database_url,
            # One bench device sends every request: no rate limit or quota in the way.
            "DISTILLERY_UPLOAD_RATE_LIMIT": "1000000/minute",
            "DISTILLERY_DEVICE_DAILY_QUOTA": "0",
        }
        url = args.database_url or f"sqlite:///{tmp}/distillery.db"
        sys.path.insert(0, str(REPO_ROOT))
        db = "sqlite" if not args.database_url else args.database_url.split(":", 1)[0]
        if args.database_url:  # the service migrates only embedded SQLite by itself
            from storage.db import Database

            Database(args.database_url).upgrade()
        real: list[float] = []
        bare: list[float] = []
        raw_batch: list[float] = []
        raw_one: list[float] = []
        cpu_us: list[float] = []  # the server's CPU per stored interaction
        for round_no in range(rounds):
            with server("distillery", env, args.http) as base:
                reg = httpx.post(
                    f"{base}/api/devices", json={"platform": "bench", "app_version": "1"}
                )
                device_id, token = reg.json()["device_id"], reg.json()["token"]
                warm = build_requests(device_id, token, 5, args.batch, seed=10_000 + round_no)
                run_load(base, warm, args.concurrency)
                requests = build_requests(device_id, token, count, args.batch, seed=round_no)
                cpu_before = server_cpu_s(base)
                result = run_load(base, requests, args.concurrency)
                cpu_after = server_cpu_s(base)
                accepted = sum(orjson.loads(b)["accepted"] for b in result["bodies"])
                assert result["statuses"] == [200], result["statuses"]
                assert accepted == count * args.batch, accepted
                real.append(accepted / result["wall_s"])
                if cpu_before is not None and cpu_after is not None:
                    cpu_us.append(1e6 * (cpu_after - cpu_before) / accepted)
                emit(
                    bench="ingest",
                    target="distillery",
                    db=db,
                    round=round_no,
                    interactions_per_s=round(real[-1]),
                    requests=count,
                    batch=args.batch,
                    concurrency=args.concurrency,
                    p50_ms=round(result["p50_ms"], 2),
                    p99_ms=round(result["p99_ms"], 2),
                    server_cpu_us_per_interaction=round(cpu_us[-1], 1) if cpu_us else None,
                    client_processes=result["client_processes"],
                )
            same_rows = build_batches(count, args.batch, seed=round_no)
            for per_batch, sink in ((True, raw_batch), (False, raw_one)):
                sink.append(raw_insert(url, device_id, same_rows, per_batch))
                emit(
                    bench="ingest",
                    target="raw-insert-commit-per-batch" if per_batch else "raw-insert-one-commit",
                    db=db,
                    round=round_no,
                    interactions_per_s=round(sink[-1]),
                    requests=count,
                    batch=args.batch,
                )
            with server("bare", http=args.http) as base:
                run_load(base, requests[:5], args.concurrency)
                result = run_load(base, requests, args.concurrency)
                assert result["statuses"] == [200], result["statuses"]
                bare.append(count * args.batch / result["wall_s"])
                emit(
                    bench="ingest",
                    target="bare-starlette",
                    round=round_no,
                    interactions_per_s=round(bare[-1]),
                    requests=count,
                    batch=args.batch,
                    concurrency=args.concurrency,
                    p50_ms=round(result["p50_ms"], 2),
                    p99_ms=round(result["p99_ms"], 2),
                    client_processes=result["client_processes"],
                )
        real_m, bare_m = statistics.median(real), statistics.median(bare)
        raw_m, one_m = statistics.median(raw_batch), statistics.median(raw_one)
        emit(
            bench="ingest",
            summary=True,
            db=db,
            interactions_per_s=round(real_m),
            baseline="bare Starlette endpoint that parses the same JSON (orjson), same run",
            baseline_interactions_per_s=round(bare_m),
            ratio_to_bare=round(real_m / bare_m, 3),
            raw_insert_per_batch_commit_per_s=round(raw_m),
            raw_insert_one_commit_per_s=round(one_m),
            ratio_to_raw_per_batch=round(real_m / raw_m, 3),
            server_cpu_us_per_interaction=round(statistics.median(cpu_us), 1) if cpu_us else None,
            goal_ratio_to_raw_per_batch=0.5,
            meets_goal=bool(real_m / raw_m >= 0.5),
            rounds=rounds,
        )


if __name__ == "__main__":
    main()
