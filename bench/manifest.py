"""Latest-manifest latency (p50/p99) at 64 concurrent clients, beside a bare Starlette endpoint.

The real service answers from a registry of three students (four GGUF files each) in
SQLite; the bare endpoint returns a constant body of the same size. Variants: the default
(state re-checked at most once a second), a state check on every request (cache 0 s), and
conditional polls (If-None-Match -> 304), all against the same bare baseline in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _common import REPO_ROOT, emit, raw_request, run_load, server

sys.path.insert(0, str(REPO_ROOT))

from storage.db import Database  # noqa: E402
from storage.models import Channel, ChannelEvent, ModelVersion  # noqa: E402

PATH = "/api/models/mobile/latest"


def seed_registry(data_dir: Path) -> None:
    """Three published students on `stable`, each with four quantizations."""
    db = Database(f"sqlite:///{data_dir / 'distillery.db'}")
    db.upgrade()
    with db.transaction(write=True) as session:
        for n, student in enumerate(["smollm2-135m-student", "llama-3.2-1b-student", "phi-3-mini"]):
            files = [
                {
                    "name": f"{student}.{q}.gguf",
                    "path": f"models/{student}/v{n + 3}/{student}.{q}.gguf",
                    "size": 100_000_000 + i,
                    "sha256": f"{i}{n}".ljust(64, "a"),
                    "quantization": q,
                    "format": "gguf",
                }
                for i, q in enumerate(["F16", "Q8_0", "Q4_0", "Q4_K_M"])
            ]
            mv = ModelVersion(
                student=student,
                version=n + 3,
                base_model=f"org/{student}-base",
                files=files,
                status="published",
                min_app_version="1.4.0",
                published_at=datetime.now(UTC),
            )
            session.add(mv)
            session.flush()
            session.add(Channel(student=student, name="stable", model_version_id=mv.id))
            session.add(
                ChannelEvent(
                    student=student, channel="stable", action="promote", to_version_id=mv.id
                )
            )
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    count = args.requests or (2000 if args.quick else 20000)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        seed_registry(data)
        plain = [raw_request("GET", PATH)] * count
        p99: dict[str, list[float]] = {}
        p50: dict[str, list[float]] = {}

        def record(target: str, result: dict, size: int) -> None:
            p50.setdefault(target, []).append(result["p50_ms"])
            p99.setdefault(target, []).append(result["p99_ms"])
            emit(
                bench="manifest",
                target=target,
                round=r,
                requests=count,
                concurrency=args.concurrency,
                body_bytes=size,
                statuses=result["statuses"],
                p50_ms=round(result["p50_ms"], 3),
                p99_ms=round(result["p99_ms"], 3),
                requests_per_s=round(count / result["wall_s"]),
                client_processes=result["client_processes"],
            )

        for r in range(rounds):  # noqa: B007 (read by record)
            for cache_s in ("1", "0"):
                env = {
                    "DISTILLERY_DATA_DIR": tmp,
                    "DISTILLERY_DATABASE_URL": "",
                    "DISTILLERY_MANIFEST_CACHE_SECONDS": cache_s,
                }
                with server("distillery", env) as base:
                    first = httpx.get(base + PATH, headers={"Host": "127.0.0.1"})  # as the load
                    body, etag = first.content, first.headers["etag"]
                    assert len(first.json()["models"]) == 3
                    (data / "bare.json").write_bytes(body)
                    run_load(base, plain[:500], args.concurrency)  # warm up
                    record(
                        f"distillery-cache-{cache_s}s",
                        run_load(base, plain, args.concurrency),
                        len(body),
                    )
                    if cache_s == "1":
                        cond = [raw_request("GET", PATH, headers={"If-None-Match": etag})] * count
                        result = run_load(base, cond, args.concurrency)
                        assert result["statuses"] == [304], result["statuses"]
                        record("distillery-304", result, 0)
            with server("bare", {"BENCH_BARE_MANIFEST": str(data / "bare.json")}) as base:
                assert httpx.get(base + PATH).content == body
                run_load(base, plain[:500], args.concurrency)
                record("bare-starlette", run_load(base, plain, args.concurrency), len(body))

        bare99 = statistics.median(p99["bare-starlette"])
        for target in [t for t in p99 if t != "bare-starlette"]:
            real99 = statistics.median(p99[target])
            emit(
                bench="manifest",
                summary=True,
                target=target,
                p50_ms=round(statistics.median(p50[target]), 3),
                p99_ms=round(real99, 3),
                baseline="bare Starlette endpoint returning the same-size JSON, same run",
                baseline_p50_ms=round(statistics.median(p50["bare-starlette"]), 3),
                baseline_p99_ms=round(bare99, 3),
                p99_ratio_to_bare=round(real99 / bare99, 3),
                goal_p99_ratio=1.5,
                meets_goal=bool(real99 <= 1.5 * bare99),
                rounds=rounds,
            )


if __name__ == "__main__":
    main()
