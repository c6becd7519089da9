"""One weekly cycle, timed by stage: wall time and peak memory of each, then a total.

The real perpetual flow runs once on a fresh store holding N feedback records made from
the built-in training tasks: prepare → teacher signals → training → evaluation → export
(GGUF, llama.cpp parity) → publish. Stages are the flow's own Prefect task runs: their
start and end times are read from Prefect's API afterwards. A sampler thread reads the
resident memory of this process and its children (and the CUDA allocator's, on a GPU)
every 0.1 s, so a stage's peak is the highest sample inside its window. The distill task
is split in two with the trainer's own runtime: teacher signals (and tokenizing) first,
then training.

    python bench/cycle.py --quick          # tiny llama pair on CPU, a few minutes
    python bench/cycle.py --device cuda    # Mistral-7B → Llama-3.2-1B, 10,000 records

Each stage's share of the total is the figure to work on; there is no baseline to beat in
the same run, the previous run's table is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

# Task name (prefix, "-" read as "_") -> stage, in the order a cycle reaches them.
STAGES = {
    "build_snapshot": "prepare",
    "publish_prepare_report": "prepare",
    "plan": "plan",
    "resolve_teacher": "plan",
    "heal_student": "plan",
    "distill_target": "distill",
    "resolve_eval_sets": "evaluate",
    "name_eval_sets": "evaluate",
    "evaluate_model": "evaluate",
    "compare_results": "evaluate",
    "gate_results": "evaluate",
    "store_evaluations": "evaluate",
    "evaluation_history": "evaluate",
    "write_evaluation_report": "evaluate",
    "publish_artifacts": "evaluate",
    "record_gate_decision": "evaluate",
    "link_candidate_evaluations": "evaluate",
    # export-target runs merge-adapter, write-gguf, quantize and check-parity inside it
    "export_target": "export + parity",
    "publish_version": "publish",
    "promote": "publish",
    "start_canary": "publish",
}
# Subflows show up as task runs that wrap their own tasks: counted through those.
WRAPPERS = {"evaluate_candidate", "prepare", "target_cycle", "distill_stage"}
NESTED = ("merge_adapter", "write_gguf", "quantize", "check_parity", "export_for_phones")
ORDER = ["prepare", "plan", "teacher signals", "training", "evaluate", "export + parity",
         "publish", "other"]  # fmt: skip


@dataclass
class Sampler:
    """Memory of this process tree (and CUDA) sampled on a thread: (time, rss, cuda)."""

    interval: float = 0.1
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        cuda = _cuda_allocated()
        while not self._stop.is_set():
            rss = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            self.samples.append((time.time(), rss, cuda()))
            self._stop.wait(self.interval)

    def peak(self, start: float, end: float) -> tuple[int, int]:
        """Highest RSS and CUDA allocation sampled within [start, end]."""
        inside = [s for s in self.samples if start <= s[0] <= end] or [
            min(self.samples, key=lambda s: abs(s[0] - start))
        ]
        return max(s[1] for s in inside), max(s[2] for s in inside)


def _cuda_allocated() -> Any:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.memory_allocated
    except ImportError:
        pass
    return lambda: 0


def seed_store(records: int) -> None:
    """`records` interactions from the built-in training tasks, as one device's uploads."""
    import uuid

    from storage.db import get_database
    from storage.models import Device, utcnow
    from storage.repo.feedback import FeedbackRow, insert_feedback_batch
    from tasks.sampledata import training_tasks

    tasks = training_tasks()
    db = get_database()
    with db.transaction(write=True) as session:
        session.add(Device(id="bench", token_hash="x" * 64, platform="android", app_version="1"))
        session.flush()
        for start in range(0, records, 500):
            rows = [
                FeedbackRow(
                    id=uuid.uuid4(),
                    model_name="bench",
                    model_version="1",
                    prompt=f"{tasks[n % len(tasks)].prompt} (#{n})",  # distinct prompts
                    response=tasks[n % len(tasks)].answer,
                    client_created_at=utcnow(),
                    rating=5 if n % 7 else 2,
                )
                for n in range(start, min(start + 500, records))
            ]
            insert_feedback_batch(session=session, device_id="bench", interactions=rows)


def cycle_config(args: argparse.Namespace) -> Any:
    """The demo's cycle with the bench's pair, training steps and device; the gate's answer
    gain off."""
    from demo.run import DemoOptions, demo_config
    from tasks.evaluate.gate import GatePolicy

    options = DemoOptions(teacher=args.teacher, student=args.student, max_steps=args.steps)
    config = demo_config(options)
    # This bench times stages, not quality: the first version must not need an answer gain
    # to reach export and publish (a random tiny student has none). Every other check holds.
    evaluate = config.evaluate.model_copy(update={"gate": GatePolicy(answer_gain="off")})
    config = config.model_copy(update={"evaluate": evaluate})
    if args.device:
        config = config.model_copy(update={"distill": replace(config.distill, device=args.device)})
    return config


async def _task_runs(since: datetime) -> list[Any]:
    """Every task run that started since `since` (this cycle's: the server may keep older)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    window = TaskRunFilter(start_time=TaskRunFilterStartTime(after_=since))
    runs: list[Any] = []
    async with get_client() as client:
        while True:
            page = await client.read_task_runs(task_run_filter=window, limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                return runs


def stage_table(sampler: Sampler, runs: list[Any], train_seconds: float) -> list[dict[str, Any]]:
    """Per stage: wall seconds (summed over its task runs) and the peak memory inside them."""
    totals: dict[str, dict[str, float]] = {}

    def add(stage: str, start: float, end: float) -> None:
        rss, cuda = sampler.peak(start, end)
        row = totals.setdefault(stage, {"seconds": 0.0, "rss": 0.0, "cuda": 0.0})
        row["seconds"] += end - start
        row["rss"], row["cuda"] = max(row["rss"], rss), max(row["cuda"], cuda)

    others: set[str] = set()
    timed = [r for r in runs if r.start_time is not None and r.end_time is not None]
    exports = [
        (_ts(r.start_time), _ts(r.end_time))
        for r in timed
        if r.name.replace("-", "_").startswith("export_target")
    ]
    for run in timed:
        start, end = _ts(run.start_time), _ts(run.end_time)
        name = run.name.replace("-", "_")
        if name.rsplit("_", 1)[0] in WRAPPERS:
            continue
        if name.startswith(NESTED) and any(a <= start and end <= b for a, b in exports):
            continue  # ran inside export-target: counted there once
        stage = next((s for p, s in STAGES.items() if name.startswith(p)), None)
        stage = stage or ("export + parity" if name.startswith(NESTED) else "other")
        if stage == "other":
            others.add(run.name.rsplit("-", 1)[0])
        if stage == "distill":  # the trainer's own runtime is the training; before it, signals
            split = max(start, end - train_seconds)
            add("teacher signals", start, split)
            add("training", split, end)
        else:
            add(stage, start, end)
    if others:
        print(f"(other: {', '.join(sorted(others))})")
    return [{"stage": s, **totals[s]} for s in ORDER if s in totals]


def _ts(value: datetime) -> float:
    return value.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny llama pair on CPU, 300 records")
    parser.add_argument("--records", type=int, default=None, help="feedback records [10000]")
    parser.add_argument("--teacher", default=None, help="[mistral-7b-instruct-v0.3]")
    parser.add_argument("--student", default=None, help="[llama-3.2-1b-instruct]")
    parser.add_argument("--steps", type=int, default=None, help="training steps [300; quick 8]")
    parser.add_argument("--device", default=None, help="cpu or cuda [cuda if present]")
    parser.add_argument("--json", action="store_true", help="one JSON line per stage instead")
    args = parser.parse_args()
    quick = args.quick
    args.records = args.records or (300 if quick else 10_000)
    args.teacher = args.teacher or ("tiny-llama-teacher" if quick else "mistral-7b-instruct-v0.3")
    args.student = args.student or ("tiny-llama-student" if quick else "llama-3.2-1b-instruct")
    args.steps = args.steps or (8 if quick else 300)

    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        os.environ["DISTILLERY_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.setdefault("DISTILLERY_REGISTRY", "local")
        os.environ.setdefault("DISTILLERY_PROGRESS", "0")
        from flows.perpetual import perpetual_cycle
        from tasks.cycle_summary import summary_of

        seed_store(args.records)
        config = cycle_config(args)
        started = time.time()
        with Sampler() as sampler:
            state = perpetual_cycle(config, return_state=True)
        total = time.time() - started
        summary = summary_of(state)
        rows = summary.students if summary else []
        runs = asyncio.run(_task_runs(datetime.fromtimestamp(started, UTC)))
        train_seconds = _train_seconds()
    table = stage_table(sampler, runs, train_seconds)
    peak_rss = max(s[1] for s in sampler.samples)
    status = ", ".join(f"{r.student}: {r.status}" for r in rows) or state.message
    if args.json:
        for row in table:
            print(json.dumps({"bench": "cycle", **row}))
        print(json.dumps({"bench": "cycle", "stage": "total", "seconds": total, "rss": peak_rss}))
        return
    print(f"{args.teacher} → {args.student}, {args.records} records, {args.steps} steps: {status}")
    print("| stage | wall s | share | peak RSS GiB | peak CUDA GiB |\n|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['stage']} | {row['seconds']:.1f} | {row['seconds'] / total:.0%} | "
            f"{row['rss'] / 2**30:.2f} | {row['cuda'] / 2**30:.2f} |"
        )
    print(f"| total | {total:.1f} | 100% | {peak_rss / 2**30:.2f} | "
          f"{max(s[2] for s in sampler.samples) / 2**30:.2f} |")  # fmt: skip


def _train_seconds() -> float:
    """The trainer's own seconds, recorded on the cycle's training run (0 when none trained)."""
    from sqlalchemy import select

    from storage.db import get_database
    from storage.models import TrainingRun

    with get_database().transaction() as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
        return float((run.metrics or {}).get("train_seconds", 0.0)) if run else 0.0


if __name__ == "__main__":
    main()
