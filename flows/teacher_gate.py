"""The teacher's new LoRA is judged before later cycles distill from it.

The same scoring, paired intervals and gate as a student's candidate: the new adapter
against the teacher without it (the base) and against the adapter in use (the stable one),
on the snapshot's held-out split and the fixed benchmark. A rejected adapter is never
pointed to; its reasons are kept beside the pointer.
"""

from __future__ import annotations

from prefect import flow

from flows.evaluate import compare_with_references, score_models
from tasks.evaluate.cache import default_cache_dir
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.gate import GateDecision
from tasks.evaluate.pipeline import default_out_dir
from tasks.evaluate.prefect_tasks import (
    gate_results_task,
    name_eval_sets_task,
    resolve_eval_sets_task,
    write_report_task,
)
from tasks.evaluate.sets import snapshot_set_name
from tasks.settings import with_pipeline_settings


@flow(name="evaluate-teacher-adapter", log_prints=True)
@with_pipeline_settings
def evaluate_teacher_adapter(
    teacher: str,
    new_adapter_dir: str,
    current_adapter_dir: str | None,
    snapshot_path: str,
    config: EvaluateConfig | None = None,
) -> GateDecision:
    """The gate's decision on the teacher's new adapter; its report is written beside."""
    config = config or EvaluateConfig()
    out = default_out_dir(f"{teacher}-adapter")
    sets = resolve_eval_sets_task(snapshot_path, [], config.fixed_set_path)
    new_set = snapshot_set_name(snapshot_path)
    names = name_eval_sets_task(list(sets), new_set, None)
    cache = str(default_cache_dir()) if config.cache_results else None
    # Its "base" is the teacher alone, which cycles score as their yardstick: often cached.
    models = {"candidate": new_adapter_dir, "stable": current_adapter_dir, "base": None}
    paths = score_models({k: (teacher, a) for k, a in models.items()}, sets, out, config, cache)
    deltas = compare_with_references(paths, config)
    decision = gate_results_task(
        paths["candidate"], paths["base"], paths.get("stable"), deltas, new_set, config.gate,
        None, names,
    )  # fmt: skip
    write_report_task(
        f"{out}/report",
        student=f"{teacher} (teacher adapter)",
        results_paths=paths,
        deltas=deltas,
        decision=decision,
        names=names,
        new_set=new_set,
    )
    verdict = "adopt" if decision.promote else "keep the adapter in use"
    print(f"teacher {teacher}: {verdict}: " + "; ".join(decision.reasons))
    return decision
