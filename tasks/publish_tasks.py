"""The publish stage's Prefect tasks: one line each, retries only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.publish import promote, publish_version, start_canary

# Publishing and promoting are idempotent, so a retry after a lost connection is safe.
publish_version_task = task(name="publish-version", retries=2, retry_delay_seconds=5)(
    publish_version
)
promote_task = task(name="promote", retries=2, retry_delay_seconds=5)(promote)
start_canary_task = task(name="start-canary", retries=2, retry_delay_seconds=5)(start_canary)
