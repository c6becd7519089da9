"""Evaluate a candidate against stable and the base student, gate it, report; re-check live ones."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.evaluate.card import CARD_METRICS
from tasks.evaluate.compare import compare_task
from tasks.evaluate.pipeline import (
    default_out_dir,
    evaluation_history,
    gate_results,
    live_targets,
    publish_artifacts,
    resolve_eval_sets,
    store_evaluations,
    write_report_task,
)
from tasks.evaluate.run import EvalConfig, evaluate_model_task, load_results, metrics_by_set
from tasks.evaluate.sets import snapshot_set_name

# The flow's metrics summary holds what the model card shows (the publisher renders it).
HEADLINE = (*CARD_METRICS, "entropy_spikes")


def _headline(path: str) -> dict[str, dict[str, float]]:
    sets = metrics_by_set(load_results(path))
    return {s: {k: m[k] for k in HEADLINE if k in m} for s, m in sets.items()}


@flow(name="evaluate-candidate", log_prints=True)
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
    eval_options: dict[str, Any] | None = None,
    gate_options: dict[str, Any] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    out_dir: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Candidate vs stable vs base on the same prompts; returns decision, metrics, report path."""
    student = student or student_preset
    out = out_dir or default_out_dir(student)
    sets = resolve_eval_sets(snapshot_path, list(earlier_test_paths), fixed_set_path)
    config = EvalConfig(**(eval_options or {}))
    adapters = {"candidate": candidate_adapter_dir, "stable": stable_adapter_dir, "base": None}
    paths = {
        label: evaluate_model_task(
            student_preset, adapter, sets, f"{out}/{label}.json", config, device
        )
        for label, adapter in adapters.items()
        if label != "stable" or adapter
    }
    deltas = {
        ref: compare_task(paths["candidate"], paths[ref], n_resamples=n_resamples, seed=seed)
        for ref in paths
        if ref != "candidate"
    }
    new_set = snapshot_set_name(snapshot_path)
    decision = gate_results(
        paths["candidate"], paths["base"], paths.get("stable"), deltas, new_set, gate_options
    )
    versions = {"candidate": candidate_version_id, "stable": stable_version_id}
    ids = store_evaluations(student, paths, versions, decision)
    report = write_report_task(
        f"{out}/report",
        student=student,
        results_paths=paths,
        deltas=deltas,
        decision=decision,
        history=evaluation_history(student),
    )
    publish_artifacts(student, paths, decision, report)
    print("\n".join(decision["reasons"]))
    return {
        "decision": "promote" if decision["promote"] else "reject",
        "gate": decision,
        "new_set": new_set,
        "metrics": {label: _headline(p) for label, p in paths.items()},
        "report_path": report,
        "results_paths": paths,
        "evaluation_ids": ids,
    }


@flow(name="reevaluate-live-versions", log_prints=True)
def reevaluate_live_versions_flow(
    fixed_set_path: str | None = None,
    eval_options: dict[str, Any] | None = None,
    out_dir: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Monthly: every published version on the fixed set and every snapshot's test split."""
    targets = live_targets()
    sets = resolve_eval_sets(None, targets["snapshot_paths"], fixed_set_path)
    config = EvalConfig(**(eval_options or {}))
    out = out_dir or default_out_dir("live")
    rows: list[dict[str, Any]] = []
    for v in targets["versions"]:
        name = f"{v['student']}-v{v['version']}"
        if v["adapter_dir"] is None:
            rows.append({"version": name, "status": "skipped: its adapter folder is gone"})
            continue
        path = evaluate_model_task(
            v["student"], v["adapter_dir"], sets, f"{out}/{name}.json", config, device
        )
        store_evaluations(v["student"], {"live": path}, {"live": v["model_version_id"]})
        for eval_set, m in _headline(path).items():
            rows.append({"version": name, "status": "evaluated", "eval_set": eval_set, **m})
    create_table_artifact(rows, key="live-versions-evaluation", description="monthly evaluation")
    return {"evaluated": sum(r["status"] == "evaluated" for r in rows), "rows": rows}
