"""Evaluate a candidate against stable and the base student, gate it, report; re-check live ones."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.evaluate.cache import default_cache_dir
from tasks.evaluate.card import CARD_METRICS
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.gate import Deltas
from tasks.evaluate.naming import name_of
from tasks.evaluate.pipeline import TEACHER, default_out_dir
from tasks.evaluate.prefect_tasks import (
    compare_task,
    evaluate_model_task,
    evaluation_history_task,
    gate_results_task,
    live_targets_task,
    name_eval_sets_task,
    publish_artifacts_task,
    resolve_eval_sets_task,
    store_evaluations_task,
    write_report_task,
)
from tasks.evaluate.run import load_results, metrics_by_set
from tasks.evaluate.sets import FIXED_SET_NAME, snapshot_set_name
from tasks.evaluate.verdict import MetricsBySet, Verdict, answers_line
from tasks.evaluate.yardstick import Yardstick, card_fields, measure, summary_line
from tasks.models.remote import is_remote
from tasks.results import StageResult
from tasks.settings import with_pipeline_settings

# The flow's metrics summary holds what the model card shows (the publisher renders it).
HEADLINE = (*CARD_METRICS, "entropy_spikes")


def _headline(path: str, names: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    sets = metrics_by_set(load_results(path))
    return {name_of(names, s): {k: m[k] for k in HEADLINE if k in m} for s, m in sets.items()}


def _with_teacher(
    metrics: dict[str, dict[str, float]], y: Yardstick | None, names: dict[str, str]
) -> dict[str, dict[str, float]]:
    """The candidate's headline metrics with the teacher's beside them (the card shows both)."""
    if y is None:
        return metrics
    extra = {name_of(names, k): v for k, v in card_fields(y).items()}
    return {s: {**m, **extra.get(s, {})} for s, m in metrics.items()}


def score_models(
    models: dict[str, tuple[str | None, str | None]],
    sets: dict[str, str],
    out: str,
    config: EvaluateConfig,
    cache: str | None,
) -> dict[str, str]:
    """Label -> results file of each (preset, adapter) scored on the sets; a label without a
    preset, and "stable" without an adapter, are left out."""
    return {
        label: evaluate_model_task(
            preset, adapter, sets, f"{out}/{label}.json", config.scoring, config.device, cache
        )
        for label, (preset, adapter) in models.items()
        if preset and (label != "stable" or adapter)
    }


def compare_with_references(paths: dict[str, str], config: EvaluateConfig) -> dict[str, Deltas]:
    """Paired deltas of the candidate against stable and base, where they were scored."""
    return {
        ref: compare_task(
            paths["candidate"], paths[ref], n_resamples=config.n_resamples, seed=config.seed
        )
        for ref in ("stable", "base")
        if ref in paths
    }


@flow(name="evaluate-candidate", log_prints=True)
@with_pipeline_settings
def evaluate_candidate_flow(
    student_preset: str,
    candidate_adapter_dir: str,
    snapshot_path: str,
    stable_adapter_dir: str | None = None,
    earlier_test_paths: list[str] | tuple[str, ...] = (),
    fixed_set_path: str | None = None,
    student: str | None = None,
    candidate_version_id: int | None = None,
    stable_version_id: int | None = None,
    teacher_preset: str | None = None,
    teacher_adapter_dir: str | None = None,
    config: EvaluateConfig | None = None,
    out_dir: str | None = None,
) -> Verdict:
    """Candidate vs stable vs base (and the teacher as yardstick) on the same prompts.

    Returns the decision, metrics per model keyed by readable set names, the report's path,
    and the teacher comparison. With `config.cache_results`, a model's scores on a set it
    already scored (teacher, base, a stable version scored as candidate) are read back.
    """
    config = config or EvaluateConfig()
    student = student or student_preset
    out = out_dir or default_out_dir(student)
    sets = resolve_eval_sets_task(snapshot_path, list(earlier_test_paths), config.fixed_set_path)
    new_set = snapshot_set_name(snapshot_path)
    names = name_eval_sets_task(list(sets), new_set, student)
    cache = str(default_cache_dir()) if config.cache_results else None
    models = {
        "candidate": (student_preset, candidate_adapter_dir),
        "stable": (student_preset, stable_adapter_dir),
        "base": (student_preset, None),
        # A remote teacher is not loaded here to be scored: no local yardstick for it.
        TEACHER: (None if is_remote(teacher_preset) else teacher_preset, teacher_adapter_dir),
    }
    paths = score_models(models, sets, out, config, cache)
    deltas = compare_with_references(paths, config)
    decision = gate_results_task(
        paths["candidate"],
        paths["base"],
        paths.get("stable"),
        deltas,
        new_set,
        config.gate,
        paths.get(TEACHER),
        names,
    )
    versions = {"candidate": candidate_version_id, "stable": stable_version_id}
    ids = store_evaluations_task(student, paths, versions, decision)
    history = evaluation_history_task(student, stable_version_id)
    older = [k for k in dict.fromkeys(h.eval_set for h in history) if k not in names]
    names = {**names, **(name_eval_sets_task(older, new_set, student) if older else {})}
    report = write_report_task(
        f"{out}/report",
        student=student,
        results_paths=paths,
        deltas=deltas,
        decision=decision,
        history=history,
        names=names,
        new_set=new_set,
    )
    publish_artifacts_task(student, paths, decision, report, names)
    yardstick = (
        measure(load_results(paths["candidate"]), load_results(paths[TEACHER]))
        if TEACHER in paths
        else None
    )
    teacher_line = summary_line(yardstick, names, new_set) if yardstick else "no teacher evaluated"
    reference = "stable" if "stable" in deltas else "base"
    answers = answers_line(
        deltas[reference], FIXED_SET_NAME, name_of(names, FIXED_SET_NAME), reference
    )
    print("\n".join(decision.reasons))
    print(answers)
    print(teacher_line)
    metrics: dict[str, MetricsBySet] = {label: _headline(p, names) for label, p in paths.items()}
    metrics["candidate"] = _with_teacher(metrics["candidate"], yardstick, names)
    return Verdict(
        decision="promote" if decision.promote else "reject",
        gate=decision,
        detail="; ".join(decision.reasons),  # in full: never cut
        new_set=new_set,
        new_set_name=names[new_set],
        set_names=names,
        teacher=teacher_line,
        answers=answers,
        metrics=metrics,
        report_path=report,
        results_paths=paths,
        evaluation_ids=ids,
    )


class LiveEvaluation(StageResult):
    """What the monthly re-evaluation scored."""

    evaluated: int
    """(version, eval set) pairs scored."""
    rows: list[dict[str, str | float]]
    """The table artifact's rows: version, status, eval set and headline metrics."""


@flow(name="reevaluate-live-versions", log_prints=True)
@with_pipeline_settings
def reevaluate_live_versions_flow(
    config: EvaluateConfig | None = None, out_dir: str | None = None
) -> LiveEvaluation:
    """Monthly: every published version on the fixed set and every snapshot's test split.

    Scores only (`config.scoring`, `fixed_set_path`, `device`, `cache_results`): no gate runs.
    """
    config = config or EvaluateConfig()
    targets = live_targets_task()
    sets = resolve_eval_sets_task(None, targets.snapshot_paths, config.fixed_set_path)
    out = out_dir or default_out_dir("live")
    cache = str(default_cache_dir()) if config.cache_results else None
    rows: list[dict[str, str | float]] = []
    for v in targets.versions:
        name = f"{v.student}-v{v.version}"
        if v.adapter_dir is None:
            rows.append({"version": name, "status": f"skipped: {v.missing or 'no adapter'}"})
            continue
        path = evaluate_model_task(
            v.student,
            v.adapter_dir,
            sets,
            f"{out}/{name}.json",
            config.scoring,
            config.device,
            cache,
        )
        store_evaluations_task(v.student, {"live": path}, {"live": v.model_version_id})
        names = name_eval_sets_task(list(sets), None, v.student)
        for eval_set, m in _headline(path, names).items():
            rows.append({"version": name, "status": "evaluated", "eval_set": eval_set, **m})
    create_table_artifact(rows, key="live-versions-evaluation", description="monthly evaluation")
    return LiveEvaluation(evaluated=sum(r["status"] == "evaluated" for r in rows), rows=rows)
