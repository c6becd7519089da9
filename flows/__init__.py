"""Prefect flows that compose tasks, and the `distillery` command line."""
