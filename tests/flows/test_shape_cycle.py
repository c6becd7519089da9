"""A whole perpetual cycle at the seed models' real widths and vocabularies, few layers deep.

`shape-mistral-7b-L1` teaches `shape-tinyllama-1.1b-L2`: Mistral-7B-v0.3's widths (4096, GQA
32/8, MLP 14336) and its v3 vocabulary of 32768 against TinyLlama's (2048, GQA 32/4, 5632)
and Llama-2's SentencePiece vocabulary of 32000 — a cross-tokenizer pair — through every
stage: prepare, teacher signals, training, evaluation, the gate, GGUF export judged by
llama.cpp, publish. Random weights, small data, a few steps and short records: minutes on
two CPU cores, about 4 GB of memory. Its own CI step:

    python -m pytest -m shapes tests/flows/test_shape_cycle.py
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from flows.perpetual import perpetual_cycle
from storage.layout import layout
from storage.models import ModelVersion, TrainingRun
from tasks.config import CycleConfig
from tasks.cycle_summary import summary_of
from tests.flows.test_perpetual import seed_rows
from tests.tasks.prepare.conftest import insert

pytestmark = pytest.mark.shapes

TEACHER, STUDENT = "shape-mistral-7b-L1", "shape-tinyllama-1.1b-L2"


def shape_config(**overrides: Any) -> CycleConfig:
    values: dict[str, Any] = {
        "teacher": TEACHER,
        "students": [STUDENT],
        "min_new_records": 10,
        "settle_seconds": 0,
        "distill": {
            "max_steps": 4,
            "learning_rate": 3e-3,
            "save_steps": 100,
            "max_length": 96,
            "per_device_batch_size": 4,
            "grad_accum": 1,
            "teacher_batch_size": 4,
        },
        "evaluate": {
            "scoring": {"limit": 6, "max_new_tokens": 8, "batch_size": 6},
            "n_resamples": 50,
        },
        "export": {"quantizations": ["Q8_0"]},
    }
    return CycleConfig(**{**values, **overrides})


def test_a_cross_tokenizer_cycle_at_real_widths_publishes(
    prefect_harness: None, store: Any
) -> None:
    import gguf

    from tasks.models.load import materialize_preset

    insert(store, seed_rows(0, 24))
    state = perpetual_cycle(shape_config(), return_state=True)
    assert state.is_completed(), state.message
    summary = summary_of(state)
    assert summary is not None
    row = {r.student: r for r in summary.students}[STUDENT]
    assert row.status == "published" and row.version == 1, row

    with store.transaction() as session:
        version = session.scalar(select(ModelVersion).where(ModelVersion.student == STUDENT))
        assert version is not None and version.status == "published"
        # Different vocabularies: cross-tokenizer logit distillation, not plain logit KD.
        assert version.strategy == "xtok", version.strategy
        assert version.base_model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
        assert version.gate["promote"], version.gate
        run = session.get(TrainingRun, version.training_run_id)
        assert run is not None and run.teacher == TEACHER
        merged = [f for f in version.files if f.get("role", "merged") == "merged"]
        assert [f["quantization"] for f in merged] == ["Q8_0"]
        gguf_path = layout().artifact_root / merged[0]["path"]

    # The published file is TinyLlama's shape at two layers, with its own vocabulary.
    fields = gguf.GGUFReader(gguf_path).fields
    assert fields["general.architecture"].contents() == "llama"
    assert fields["llama.embedding_length"].contents() == 2048
    assert fields["llama.block_count"].contents() == 2
    assert fields["llama.attention.head_count_kv"].contents() == 4
    assert len(fields["tokenizer.ggml.tokens"].contents()) == 32000
    assert (materialize_preset(STUDENT) / "tokenizer.model").is_file()  # as the real repo has
