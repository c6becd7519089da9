"""The distill stage as a flow of its own, so a worker of another pool (a GPU host) runs it.

A cycle whose configuration names `distill_deployment` hands its training to that deployment
(`run_deployment`) and waits; the worker that picks it up plans the target again on its own
host (paths under its artifact root, the snapshot and the stable adapter fetched from the
shared store), trains, and pushes the adapter. The cycle then reads the run back from the
database. Nothing passes between the hosts but typed parameters, rows and the store.
"""

from __future__ import annotations

from typing import cast

from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from storage.db import get_database
from tasks.config import CycleConfig
from tasks.cycle import training_slot
from tasks.cycle_tasks import distill_target_task, heal_student_task, plan_target_task
from tasks.distill.config import DistillResult
from tasks.prepare.summary import SnapshotSummary
from tasks.settings import with_pipeline_settings
from tasks.stage_runs import here, trained_run
from tasks.target import CycleTarget
from tasks.teacher_tasks import resolve_teacher_task


@flow(name="distill-stage", persist_result=False, log_prints=False)
@with_pipeline_settings
def distill_stage(target: CycleTarget, snapshot: SnapshotSummary, config: CycleConfig) -> int:
    """Plan and train one target on this worker's host; the id of its training run."""
    snapshot = here(snapshot)  # the snapshot's folder under this host's artifact root
    plan = plan_target_task(target, snapshot, config)
    if plan.skip:
        raise RuntimeError(f"{target.name}: nothing to train here: {plan.skip}")
    teacher = resolve_teacher_task(config.teacher, config.use_teacher_adapter)
    with training_slot(target.student):
        heal_student_task(target.student)
        trained = distill_target_task(target, teacher, snapshot, plan, config)
    if trained.run_id is None:
        raise RuntimeError(f"{target.name}: the training was not recorded in the database")
    return trained.run_id


def distill_elsewhere(
    deployment: str,
    target: CycleTarget,
    snapshot: SnapshotSummary,
    config: CycleConfig,
    output_dir: str,
) -> DistillResult:
    """Run the distill stage as `deployment` (another pool's worker) and wait for it; the
    training it recorded, read back under this host's artifact root."""
    parent = flow_run.get_id() or "local"
    started = run_deployment(  # sync in a sync flow (Prefect's sync_compatible)
        deployment,
        parameters={"target": target, "snapshot": snapshot, "config": config},
        # A retried cycle finds the run it already started instead of training twice.
        idempotency_key=f"{parent}:{target.name}:{snapshot.snapshot_id}",
        poll_interval=2,
        timeout=None,
    )
    run = cast(FlowRun, started)
    if run.state is None or not run.state.is_completed():
        state = run.state.name if run.state else "unknown"
        raise RuntimeError(
            f"{target.name}: the distill stage ({deployment}, flow run {run.name}) ended "
            f"{state}: {run.state.message if run.state else ''}"
        )
    return trained_run(get_database(), output_dir)
