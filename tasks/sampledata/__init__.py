"""The project's own sample feedback tasks and fixed benchmark (no data from outside the repo)."""

from tasks.sampledata.generate import (
    SampleTask,
    answer_match,
    benchmark_tasks,
    exact_match,
    load_tasks,
    normalize_answer,
    training_tasks,
)

__all__ = [
    "SampleTask",
    "answer_match",
    "benchmark_tasks",
    "exact_match",
    "load_tasks",
    "normalize_answer",
    "training_tasks",
]
