"""The work of each pipeline stage as plain typed functions (Prefect tasks, callable via .fn)."""
