"""Feedback ingest over real HTTP: interactions/s of the live service beside a bare Starlette.

Both servers run under uvicorn in a subprocess on loopback, receive the same pre-built
requests (batches of 100 interactions) on the same keep-alive connections, in the same run.
The bare endpoint only parses the JSON; the ratio is how much of that ceiling we keep.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from _common import REPO_ROOT, emit, raw_request, run_load, server

WORDS = "the model answered a question about cooking travel code math history and music".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build_requests(device_id: str, token: str, count: int, batch: int, seed: int) -> list[bytes]:
    """`count` upload requests of `batch` fresh interactions each (~100 B prompt, ~400 B answer)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    headers = {"Authorization": f"Bearer {token}"}
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
        body = orjson.dumps(
            {"device_id": device_id, "interactions": items, "timestamp": now.isoformat()}
        )
        out.append(raw_request("POST", "/api/training/feedback", body, headers))
    return out


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
        "--database-url", default="", help="default: a fresh SQLite file; else an empty database"
    )
    args = parser.parse_args()
    count = args.requests or (40 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory() as tmp:
        env = {"DISTILLERY_DATA_DIR": tmp, "DISTILLERY_DATABASE_URL": args.database_url}
        db = "sqlite" if not args.database_url else args.database_url.split(":", 1)[0]
        if args.database_url:  # the service migrates only embedded SQLite by itself
            sys.path.insert(0, str(REPO_ROOT))
            from storage.db import Database

            Database(args.database_url).upgrade()
        real: list[float] = []
        bare: list[float] = []
        for round_no in range(rounds):
            with server("distillery", env) as base:
                reg = httpx.post(
                    f"{base}/api/devices", json={"platform": "bench", "app_version": "1"}
                )
                device_id, token = reg.json()["device_id"], reg.json()["token"]
                warm = build_requests(device_id, token, 5, args.batch, seed=10_000 + round_no)
                run_load(base, warm, args.concurrency)
                requests = build_requests(device_id, token, count, args.batch, seed=round_no)
                result = run_load(base, requests, args.concurrency)
                accepted = sum(orjson.loads(b)["accepted"] for b in result["bodies"])
                assert result["statuses"] == [200], result["statuses"]
                assert accepted == count * args.batch, accepted
                real.append(accepted / result["wall_s"])
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
                    client_processes=result["client_processes"],
                )
            with server("bare") as base:
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
        emit(
            bench="ingest",
            summary=True,
            db=db,
            interactions_per_s=round(real_m),
            baseline="bare Starlette endpoint that parses the same JSON (orjson), same run",
            baseline_interactions_per_s=round(bare_m),
            ratio_to_bare=round(real_m / bare_m, 3),
            goal_interactions_per_s=5000,
            goal_ratio=0.5,
            meets_goals=bool(real_m >= 5000 and real_m / bare_m >= 0.5),
            rounds=rounds,
        )


if __name__ == "__main__":
    main()
