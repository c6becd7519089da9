"""The agent steps' Prefect tasks: one line each, retries and caching only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.agents import distill_agent, export_agent, plan_agent, slice_for_agent

# The plan is a read and retries; slicing, training and export fail loudly.
plan_agent_task = task(name="agent-plan", retries=2, retry_delay_seconds=2, persist_result=True)(
    plan_agent
)
slice_for_agent_task = task(name="agent-slice", persist_result=True)(slice_for_agent)
distill_agent_task = task(name="distill-agent", persist_result=True)(distill_agent)
export_agent_task = task(name="export-agent", persist_result=True)(export_agent)
