"""bench/cycle.py: task runs become stages (wrappers and nested export tasks counted once),
and, in the slow tier, one real quick cycle prints its stage table."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    return load_script("bench/cycle.py", "bench_cycle")


def _run(name: str, start: float, end: float) -> SimpleNamespace:
    when = lambda t: datetime.fromtimestamp(1_000 + t, UTC)  # noqa: E731
    return SimpleNamespace(name=name, start_time=when(start), end_time=when(end))


def test_task_runs_become_stages() -> None:
    bench = _bench()
    sampler = bench.Sampler()
    sampler.samples = [(1_000 + t, 100 + (900 if 30 <= t <= 40 else 0), 0) for t in range(60)]
    runs = [
        _run("target-cycle-0", 0, 59),  # a subflow's wrapper: its tasks count instead
        _run("build-snapshot-0", 0, 2),
        _run("distill-target-0", 3, 23),
        _run("evaluate-model-0", 24, 28),
        _run("evaluate-model-1", 28, 29),
        _run("export-target-0", 30, 50),
        _run("check-parity-0", 45, 49),  # inside export-target
        _run("publish-version-0", 51, 52),
    ]
    table = {row["stage"]: row for row in bench.stage_table(sampler, runs, train_seconds=15)}
    assert list(table) == ["prepare", "teacher signals", "training", "evaluate",
                           "export + parity", "publish"]  # fmt: skip
    assert table["teacher signals"]["seconds"] == 5 and table["training"]["seconds"] == 15
    assert table["evaluate"]["seconds"] == 5 and table["export + parity"]["seconds"] == 20
    assert table["export + parity"]["rss"] == 1000 and table["publish"]["rss"] == 100


@pytest.mark.slow
def test_a_quick_cycle_prints_every_stage() -> None:
    done = subprocess.run(
        [sys.executable, "bench/cycle.py", "--quick", "--records", "120", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    stages = [r["stage"] for r in rows]
    for stage in ("prepare", "teacher signals", "training", "evaluate", "export + parity",
                  "publish", "total"):  # fmt: skip
        assert stage in stages, stages
    total = rows[-1]["seconds"]
    assert sum(r["seconds"] for r in rows[:-1]) <= total * 1.01
