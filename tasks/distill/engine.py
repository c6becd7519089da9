"""The distillation entry point: preflight → teacher signals (cached) → LoRA training → run row."""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from datasets import DatasetDict
from transformers import TrainerCallback

from storage.artifact_store import artifact_store
from storage.db import Database
from storage.layout import layout
from storage.repo import runs
from tasks.distill.config import DistillConfig, DistillResult
from tasks.distill.data import load_snapshot, tokenize_records, training_records
from tasks.distill.memory import plan_memory
from tasks.distill.preflight import PreflightResult, preflight, tokenizer_fingerprint
from tasks.distill.signals import (
    aligned_share,
    attach_aligned,
    attach_topk,
    fill_topk_cache,
    save_vocab_map,
    teacher_answers,
)
from tasks.distill.teacher_cache import TeacherCache
from tasks.distill.train import train_student
from tasks.distill.xtok import vocab_map
from tasks.models.load import load_model_and_tokenizer, load_tokenizer
from tasks.models.memory_plan import device_capacity
from tasks.models.presets import get_preset
from tasks.models.remote import remote_teacher

log = logging.getLogger(__name__)


def adapter_fingerprint(adapter_dir: Path) -> str:
    """sha256 of an adapter's config and weights (part of the teacher cache key)."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        path = adapter_dir / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_preflight(teacher: str, student: str, strategy: str = "auto") -> PreflightResult:
    """Compare the two presets' tokenizers and choose (or refuse) the strategy."""
    remote = remote_teacher(teacher)
    if remote is not None:
        from tasks.distill.remote import remote_preflight

        t_tok = load_tokenizer(remote.tokenizer) if remote.tokenizer else None
        result = remote_preflight(remote, t_tok, load_tokenizer(student), strategy, student)
    else:
        result = preflight(
            load_tokenizer(teacher),
            load_tokenizer(student),
            requested=strategy,
            teacher_name=teacher,
            student_name=student,
        )
    log.info("preflight %s → %s: %s (%s)", teacher, student, result.strategy, result.reason)
    return result


def prepare_signals(
    snapshot_path: Path,
    *,
    teacher: str,
    student: str,
    strategy: str,
    config: DistillConfig,
    work_dir: Path,
    cache_root: Path | None = None,
    teacher_adapter_dir: Path | None = None,
) -> dict[str, Any]:
    """Tokenized train/validation data with teacher signals, saved under `work_dir/prepared`."""
    s_tok, remote = load_tokenizer(student), remote_teacher(teacher)
    max_length = config.max_length or get_preset(student).max_seq_len
    records = training_records(
        snapshot_path,
        config.train_split,
        replay=config.replay_snapshots,
        replay_fraction=config.replay_fraction,
        seed=config.seed,
        limit=config.max_train_records,
    )

    def load_teacher() -> Any:
        return load_model_and_tokenizer(
            teacher, adapter_dir=teacher_adapter_dir, device=config.device
        )[0]

    if remote is not None:  # served over HTTP: tasks/distill/remote.py
        from tasks.distill.remote import RemoteClient, remote_cache_key

        if teacher_adapter_dir is not None:
            raise ValueError(f"remote teacher {teacher} cannot load a local adapter")
        client = RemoteClient(remote)
        t_tok = load_tokenizer(remote.tokenizer) if remote.tokenizer else None
        key = remote_cache_key(remote, t_tok, cache_root)
    else:
        t_preset, t_tok = get_preset(teacher), load_tokenizer(teacher)
        key = {
            "teacher_id": t_preset.hub_id,
            "revision": t_preset.revision,
            "root": cache_root,
            "tokenizer_hash": tokenizer_fingerprint(t_tok),
        }
    if teacher_adapter_dir is not None:  # a fine-tuned teacher is another teacher
        key["adapter_sha256"] = adapter_fingerprint(Path(teacher_adapter_dir))
    vmap, aligned = None, None
    if strategy in ("logit", "xtok") and config.alpha >= 1.0:
        # Pure cross-entropy (e.g. fine-tuning the teacher itself): no teacher signal is used.
        cache = TeacherCache.open(kind="none", max_length=max_length, **key)
        train, dropped = tokenize_records(s_tok, records, max_length)
    elif strategy in ("logit", "xtok"):
        if t_tok is None:  # preflight refuses this pair before; checked again for the types
            raise ValueError(f"logit signals from {teacher} need its tokenizer in the preset")
        cache = TeacherCache.open(
            kind="topk",
            max_length=max_length,
            k=config.top_k,
            temperature=config.temperature,
            **key,
        )
        train, dropped = tokenize_records(s_tok, records, max_length)
        # The teacher reads each record in its own tokenization and chat template (the same as
        # the student's for logit KD), so one cache entry serves every student of this teacher.
        teacher_rows = (
            train if strategy == "logit" else tokenize_records(t_tok, records, max_length)[0]
        )
        if remote is not None:
            from tasks.distill.remote import fill_topk_remote

            fill_topk_remote(
                cache,
                teacher_rows,
                client,
                k=config.top_k,
                temperature=config.temperature,
                vocab_size=len(t_tok),
            )
        else:
            fill_topk_cache(
                cache,
                teacher_rows,
                load_teacher,
                k=config.top_k,
                temperature=config.temperature,
                batch_size=config.teacher_batch_size,
                pad_id=t_tok.pad_token_id,
            )
        if strategy == "logit":
            train = attach_topk(cache, train)
        else:
            vmap = vocab_map(t_tok, s_tok)
            train = attach_aligned(cache, train, records, t_tok, s_tok, vmap, max_length)
            aligned = aligned_share(train)
            log.info(
                "cross-tokenizer KD: %.1f%% of target tokens aligned to the teacher", 100 * aligned
            )
    else:
        cache = TeacherCache.open(
            kind="generate",
            max_length=max_length,
            max_new_tokens=config.gen_max_new_tokens,
            decoding="greedy",
            **key,
        )
        if remote is not None:
            from tasks.distill.remote import remote_answers

            answered = remote_answers(
                cache, records, client, max_new_tokens=config.gen_max_new_tokens
            )
        else:
            if t_tok is None:  # a local teacher always has its tokenizer; for the types
                raise ValueError(f"teacher {teacher} has no tokenizer")
            answered = teacher_answers(
                cache,
                records,
                load_teacher,
                t_tok,
                max_new_tokens=config.gen_max_new_tokens,
                batch_size=config.gen_batch_size,
            )
        train, dropped = tokenize_records(s_tok, answered, max_length)
    splits = {"train": train}
    snapshot = load_snapshot(snapshot_path, (config.train_split,))
    # Reference answers for the student's held-out perplexity; a small snapshot may have none,
    # and an empty split must not be saved (datasets writes no data file and cannot reload it).
    if config.eval_split in snapshot and len(snapshot[config.eval_split]) > 0:
        splits["validation"] = tokenize_records(
            s_tok, list(snapshot[config.eval_split]["messages"]), max_length
        )[0]
    prepared = Path(work_dir) / "prepared"
    DatasetDict(splits).save_to_disk(str(prepared))
    if vmap is not None:
        save_vocab_map(prepared, vmap)
    stats = cache.stats.to_dict()
    log.info("teacher %s cache: %d hits, %d misses", teacher, stats["hits"], stats["misses"])
    return {
        "prepared_dir": str(prepared),
        "teacher_cache": stats,
        "train_records": len(train),
        "dropped_records": dropped,
        "aligned_share": aligned,
    }


def record_start(
    db: Database,
    teacher: str,
    student: str,
    pre: PreflightResult,
    config: DistillConfig,
    snapshot_id: int | None,
    output_dir: Path,
    teacher_adapter_dir: Path | None = None,
) -> int:
    """Insert the TrainingRun row (status running) with the strategy and its reason."""
    with db.transaction(write=True) as session:
        return runs.create_run(
            session=session,
            student=student,
            teacher=teacher,
            strategy=pre.strategy,
            strategy_reason=pre.reason,
            config=recorded_config(config, teacher_adapter_dir),
            snapshot_id=snapshot_id,
            output_dir=str(output_dir.resolve()),
        ).id


def recorded_config(config: DistillConfig, teacher_adapter_dir: Path | None) -> dict[str, Any]:
    """The run's config as the database keeps it: files in the store by their key, so the
    row reads the same on every host (the StorePath columns do this for their own paths)."""
    where = layout()
    warm, teacher = config.warm_start_adapter, teacher_adapter_dir
    return {
        **config.to_dict(),
        "warm_start_adapter": where.stored(warm) if warm else None,
        "replay_snapshots": [where.stored(p) for p in config.replay_snapshots],
        "teacher_adapter_dir": where.stored(teacher) if teacher else None,
    }


def record_finish(db: Database, run_id: int, metrics: dict[str, Any], adapter_dir: Path) -> None:
    """Mark the run succeeded with its metrics and the adapter the gate will judge."""
    # In the shared store before the row names it, so any host can warm-start or gate on it.
    artifact_store().push(adapter_dir)
    with db.transaction(write=True) as session:  # stored relative to the store (StorePath)
        runs.finish_run(
            session=session, run_id=run_id, metrics=metrics, adapter_path=str(adapter_dir.resolve())
        )


def record_failure(db: Database, run_id: int, error: str) -> None:
    """Mark the run failed with the error text."""
    with db.transaction(write=True) as session:
        runs.fail_run(session=session, run_id=run_id, error=error)


def distill(
    snapshot_path: Path,
    *,
    teacher: str,
    student: str,
    output_dir: Path,
    config: DistillConfig,
    db: Database | None = None,
    snapshot_id: int | None = None,
    callbacks: list[TrainerCallback] | None = None,
    cache_root: Path | None = None,
    teacher_adapter_dir: Path | None = None,
) -> DistillResult:
    """Distill `teacher` into a LoRA adapter on `student` from a saved snapshot."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state = PartialState()
    pre = run_preflight(teacher, student, config.strategy)
    (output_dir / "preflight.json").write_text(json.dumps(pre.to_dict(), indent=2))
    # Before any model loads: refuse at once with the numbers, or train at a batch that fits.
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config, memory_line, _ = plan_memory(teacher, student, config, device, device_capacity(device))
    log.info("%s → %s %s", teacher, student, memory_line)
    run_id = None
    if db is not None and state.is_main_process:
        run_id = record_start(
            db, teacher, student, pre, config, snapshot_id, output_dir, teacher_adapter_dir
        )
    try:
        # Rank 0 runs the teacher and writes the prepared data; the other ranks wait for it.
        signals: dict[str, Any] = {
            "prepared_dir": str(output_dir / "prepared"),
            "teacher_cache": {},
        }
        if state.is_main_process:
            signals = prepare_signals(
                snapshot_path,
                teacher=teacher,
                student=student,
                strategy=pre.strategy,
                config=config,
                work_dir=output_dir,
                cache_root=cache_root,
                teacher_adapter_dir=teacher_adapter_dir,
            )
        state.wait_for_everyone()
        train_metrics = train_student(
            Path(signals["prepared_dir"]),
            student=student,
            output_dir=output_dir,
            config=config,
            callbacks=callbacks,
        )
    except BaseException as exc:
        if run_id is not None and db is not None:
            record_failure(db, run_id, traceback.format_exc())
        log.error("distillation %s → %s failed: %s", teacher, student, exc)
        raise
    metrics = {
        **train_metrics,
        "teacher_cache": signals["teacher_cache"],
        "dropped_records": signals.get("dropped_records"),
        "aligned_share": signals.get("aligned_share"),
        "strategy_reason": pre.reason,
        "memory_plan": memory_line,
    }
    adapter_dir = output_dir / "adapter"
    if config.preference != "off" and state.is_main_process:
        from tasks.distill.preference import preference_stage

        try:
            stage = preference_stage(
                snapshot_path,
                adapter_dir,
                student=student,
                output_dir=output_dir / "preference",
                config=config,
            )
        except BaseException:
            if run_id is not None and db is not None:
                record_failure(db, run_id, traceback.format_exc())
            raise
        metrics["preference"] = stage
        if "adapter_dir" in stage:  # the candidate the gate sees
            adapter_dir = Path(stage["adapter_dir"])
    if state.is_main_process:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if run_id is not None and db is not None:
        record_finish(db, run_id, metrics, adapter_dir)
    return DistillResult(
        run_id=run_id,
        output_dir=output_dir,
        adapter_dir=adapter_dir,
        strategy=pre.strategy,
        metrics=metrics,
    )
