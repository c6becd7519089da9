"""Per-set result cache: a second evaluation of the same model on the same set is read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tasks.models.load as load_module
from tasks.evaluate.cache import model_identity, weight_file_bytes
from tasks.evaluate.run import EvalConfig, evaluate_model, load_results
from tasks.models.load import materialize_preset
from tests.tasks.evaluate.conftest import QA, save_snapshot

PRESET = "tiny-llama-teacher"
CONFIG = EvalConfig(batch_size=4, max_new_tokens=3)


def test_second_run_reads_scores_back_without_loading_the_model(
    tmp_path: Path, snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    sets = {"new": str(snapshot_dir)}
    first = load_results(
        evaluate_model(PRESET, None, sets, str(tmp_path / "1.json"), CONFIG, "cpu", str(cache))
    )
    assert first["cached_sets"] == [] and len(list(cache.glob("*.json"))) == 1
    assert first["model"] == model_identity(PRESET, None)
    weights = sorted(materialize_preset(PRESET).glob("*.safetensors"))
    assert (
        first["weight_bytes"] == weight_file_bytes(PRESET) == sum(f.stat().st_size for f in weights)
    )

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded although every set was cached")

    with monkeypatch.context() as m:
        m.setattr(load_module, "load_model_and_tokenizer", no_load)
        again = load_results(
            evaluate_model(PRESET, None, sets, str(tmp_path / "2.json"), CONFIG, "cpu", str(cache))
        )
    assert again["cached_sets"] == ["new"]
    assert again["sets"] == first["sets"]

    # Another set, other settings, or a damaged file: scored again (the model loads).
    other = save_snapshot(tmp_path / "snap-other", QA[6:], "other")
    both = {"new": str(snapshot_dir), "other": str(other)}
    mixed = load_results(
        evaluate_model(PRESET, None, both, str(tmp_path / "3.json"), CONFIG, "cpu", str(cache))
    )
    assert mixed["cached_sets"] == ["new"] and mixed["sets"]["new"] == first["sets"]["new"]
    fewer = EvalConfig(batch_size=4, max_new_tokens=3, limit=2)
    cut = load_results(
        evaluate_model(PRESET, None, sets, str(tmp_path / "4.json"), fewer, "cpu", str(cache))
    )
    assert cut["cached_sets"] == [] and cut["sets"]["new"]["metrics"]["examples"] == 2
    for f in cache.glob("*.json"):
        f.write_text("{not json")
    redo = load_results(
        evaluate_model(PRESET, None, sets, str(tmp_path / "5.json"), CONFIG, "cpu", str(cache))
    )
    assert redo["cached_sets"] == [] and redo["sets"] == first["sets"]
    # The corrupt entries this run needed were rewritten whole (the limit-2 ones stay corrupt).
    valid = []
    for f in cache.glob("*.json"):
        try:
            valid.append(json.loads(f.read_text()))
        except json.JSONDecodeError:
            pass
    assert len(valid) == len(sets) and all(valid)


def test_adapter_content_is_part_of_the_model_identity(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"one")
    first = model_identity(PRESET, str(adapter))
    assert first.startswith(f"{PRESET}@") and "+lora:" in first
    assert model_identity(PRESET, None) != first
    (adapter / "adapter_model.safetensors").write_bytes(b"two")
    assert model_identity(PRESET, str(adapter)) != first
