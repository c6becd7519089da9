"""The work of each pipeline stage as plain typed functions; their Prefect tasks are one-line
wrappers in each stage's prefect_tasks module (tasks/cycle_tasks.py etc. for one-module stages)."""
