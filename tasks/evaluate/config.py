"""How candidates are scored and judged: the scoring settings and the evaluation stage's options."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic.dataclasses import dataclass as config_dataclass

from tasks.config_base import STRICT
from tasks.evaluate.gate import GatePolicy


@config_dataclass(frozen=True, config=STRICT)
class EvalConfig:
    """Decoding and metric settings; identical for every model compared in one evaluation."""

    batch_size: int = 8
    max_new_tokens: int = 64
    max_length: int = 1024
    limit: int | None = None  # first N examples of each test split
    # The fixed benchmark is scored whole by default: it is what every version is compared
    # on, and a subset too small to decide lets anything through the gate.
    fixed_limit: int | None = None
    ece_bins: int = 15
    low_confidence: float = 0.3
    spike_sigma: float = 2.0
    spike_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.max_length < 2:
            raise ValueError(f"EvalConfig needs positive sizes, got {self}")
        if not 10 <= self.ece_bins <= 15:
            raise ValueError(f"ece_bins should be 10-15, got {self.ece_bins}")


class EvaluateConfig(BaseModel, **STRICT, frozen=True):
    """The evaluation stage: what each model is scored on and how, and the gate's policy."""

    scoring: EvalConfig = Field(
        default_factory=EvalConfig, description="decoding and metric settings (EvalConfig)"
    )
    gate: GatePolicy = Field(default_factory=GatePolicy, description="the release gate's policy")
    n_resamples: int = Field(1000, ge=10, description="bootstrap resamples per interval")
    seed: int = Field(0, description="seed of the bootstrap")
    fixed_set_path: str | None = Field(
        None, description="the fixed benchmark (JSONL); None = the built-in 64 tasks"
    )
    device: str | None = Field(None, description="cpu, cuda, cuda:1; None = the best there is")
    cache_results: bool = Field(
        True, description="read back a model's scores on a set it already scored"
    )
