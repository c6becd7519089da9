"""Benchmark the prepare stage: N synthetic interactions in a fresh SQLite file, one snapshot.

Prints JSON lines: the (untimed-for-goals) bulk insert, a baseline that only streams the same
rows from SQL, and the snapshot build; each measured phase runs in its own process so its
peak RSS (getrusage ru_maxrss) is its own. Goals: build <= 60 s and <= 1 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
READERS = 2  # reader processes the build uses on big windows (tasks.prepare.snapshot.READERS)
MODELS = ("phi-3-mini", "llama-3.2-1b", "tinyllama")


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds of this process, and of its finished children (the reader)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_texts() -> list[tuple[str, str]]:
    """(prompt, answer) pairs from the built-in training tasks (the benchmark stays out)."""
    from tasks.sampledata import training_tasks

    return [(t.prompt, t.answer) for t in training_tasks()]


def synthetic_rows(n: int, seed: int) -> Iterator[tuple]:
    """Interaction tuples in the column order of `insert_rows`, with realistic mixtures."""
    rng = random.Random(seed)
    pairs = seed_texts()
    for i in range(n):
        prompt, answer = pairs[i % len(pairs)]
        if rng.random() < 0.98:  # most prompts are distinct; the rest repeat an earlier one
            prompt = f"{prompt} (case {i})"
        roll = rng.random()
        response, correction, rating = answer, None, rng.choice((4, 5))
        if roll < 0.15:
            response, correction, rating = answer[: len(answer) // 2], answer, rng.choice((1, 2))
        elif roll < 0.25:
            response, rating = answer[::-1], rng.choice((1, 2))
        elif roll < 0.30:
            rating = 3
        elif roll < 0.35:
            rating = None
        elif roll < 0.36:
            rating = rng.choice((0, 99))
        if rng.random() < 0.02:
            prompt += f" Reach me at user{i}@example.com or +1 555 {i % 1000:03d} 4567."
        if rng.random() < 0.005:
            response = "\x00\x01 binary " + "A" * 300
        ts = f"2026-01-01 00:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000"
        category = f"cat{i % 12}"
        yield (
            uuid.UUID(int=i + 1).hex,
            "bench",
            "b",
            MODELS[i % 3],
            "1",
            prompt,
            response,
            correction,
            rating,
            rng.randint(50, 900),
            category,
            ts,
            ts,
        )


def insert_rows(db_path: Path, n: int, seed: int) -> None:
    """Migrate a fresh SQLite file and bulk insert n interactions with sqlite3 executemany."""
    import sqlite3

    from storage.db import Database

    Database(f"sqlite:///{db_path}").upgrade()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(
        "INSERT INTO devices (id, token_hash, platform, app_version, created_at) "
        "VALUES ('bench', 'x', 'android', '1', '2026-01-01 00:00:00.000000')"
    )
    conn.execute(
        "INSERT INTO feedback_batches (id, device_id, received_at, accepted, duplicates) "
        "VALUES ('b', 'bench', '2026-01-01 00:00:00.000000', 0, 0)"
    )
    conn.executemany(
        "INSERT INTO interactions (id, device_id, batch_id, model_name, model_version, prompt, "
        "response, correction, rating, latency_ms, category, client_created_at, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        synthetic_rows(n, seed),
    )
    conn.commit()
    conn.close()


def phase_read(db_path: Path) -> dict:
    """Baseline: stream the same rows and columns from SQL, no processing."""
    from storage.db import Database
    from storage.repo.interactions import stream_interactions

    db = Database(f"sqlite:///{db_path}")
    rows = 0
    with db.transaction() as session:
        for _ in stream_interactions(session=session, after=0, upto=2**62):
            rows += 1
    return {"rows": rows}


def phase_build(db_path: Path, artifact_root: Path) -> dict:
    """The snapshot build under test (default config plus a group cap)."""
    from storage.db import Database
    from tasks.prepare import PrepareConfig, build_snapshot

    db = Database(f"sqlite:///{db_path}")
    info = build_snapshot(db, config=PrepareConfig(group_cap=100_000), artifact_root=artifact_root)
    return {
        "split_sizes": info.split_sizes,
        "dropped": info.filter_stats.get("dropped"),
        "pii": info.filter_stats.get("pii"),
        "negatives": info.filter_stats.get("negatives"),
    }


def run_phase(name: str, db_path: Path, work: Path) -> dict:
    """Run one phase in a fresh interpreter and return its JSON line."""
    cmd = [sys.executable, __file__, "--phase", name, "--db", str(db_path), "--work", str(work)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    """Insert, then measure the baseline read and the build, printing JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", choices=["read", "build"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        start, cpu = time.perf_counter(), cpu_seconds()
        extra = phase_read(args.db) if args.phase == "read" else phase_build(args.db, args.work)
        wall = round(time.perf_counter() - start, 2)
        own, kids = (
            round(after - before, 2) for after, before in zip(cpu_seconds(), cpu, strict=True)
        )
        load = round(os.getloadavg()[0], 1)  # other work on the machine inflates wall time
        line = {"phase": args.phase, "wall_s": wall, "cpu_s": own, "cpu_s_reader_process": kids}
        line["load_avg_1m"] = load
        kids_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        line.update(peak_rss_mb=round(peak_rss_mb()), peak_rss_mb_reader=round(kids_rss))
        print(json.dumps({**line, **extra}))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        work = Path(tmp)
        db_path = work / "bench.db"
        start = time.perf_counter()
        insert_rows(db_path, args.rows, args.seed)
        insert_s = round(time.perf_counter() - start, 2)
        print(json.dumps({"phase": "insert", "rows": args.rows, "wall_s": insert_s}), flush=True)
        baseline = run_phase("read", db_path, work)
        print(json.dumps({**baseline, "role": "baseline: bare streaming read"}), flush=True)
        build = run_phase("build", db_path, work)
        print(json.dumps({**build, "role": "snapshot build"}), flush=True)
        # Memory of all build processes together, bounded by main + readers x largest reader.
        rss_all = build["peak_rss_mb"] + READERS * build["peak_rss_mb_reader"]
        cpu_all = round(build["cpu_s"] + build["cpu_s_reader_process"], 2)
        summary = {
            "phase": "summary",
            "rows": args.rows,
            "build_over_baseline_wall": round(build["wall_s"] / max(baseline["wall_s"], 1e-9), 2),
            "build_cpu_s_all_processes": cpu_all,
            "build_over_baseline_cpu": round(cpu_all / max(baseline["cpu_s"], 1e-9), 2),
            "build_peak_rss_mb_all_processes_bound": rss_all,
            "goals_met": {"wall_s<=60": build["wall_s"] <= 60, "rss_mb<=1024": rss_all <= 1024},
        }
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
