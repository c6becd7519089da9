"""The evaluation flows as real Prefect runs on a tiny preset with real LoRA adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import get_peft_model
from prefect.client.orchestration import get_client

from flows.evaluate import evaluate_candidate_flow, reevaluate_live_versions_flow
from storage.db import Database
from storage.models import DatasetSnapshot, ModelVersion, TrainingRun
from storage.repo import evaluations as repo
from tasks.evaluate.card import CARD_METRICS
from tasks.evaluate.config import EvalConfig, EvaluateConfig
from tasks.evaluate.gate import GatePolicy
from tasks.evaluate.model_metrics import encode_example
from tasks.evaluate.run import load_results
from tasks.evaluate.sets import cache_fixed_benchmark
from tasks.models.adapters import lora_config
from tasks.models.load import load_model_and_tokenizer
from tasks.models.presets import get_preset
from tests.tasks.evaluate.conftest import QA, save_snapshot

PRESET = "tiny-llama-student"
TEACHER = "tiny-llama-teacher"
FAST = EvalConfig(batch_size=4, max_new_tokens=4)
NEW = "new test split (snap-2)"  # no snapshot row in these tests: named by its folder


@pytest.fixture
def harness(prefect_harness: None) -> None:
    """The session's Prefect test server: nested harnesses share one server and break it."""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Presets materialize and eval sets cache here, not in the repo."""
    path = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILLERY_DATA_DIR", str(path))
        yield path


def _adapter(out: Path, *, train_steps: int = 0, noise: float = 0.0) -> str:
    """A LoRA adapter on the tiny preset: trained on QA answers, or with random noise in B."""
    model, tok = load_model_and_tokenizer(PRESET)
    peft_model = get_peft_model(model, lora_config(get_preset(PRESET), lora_dropout=0.0))
    torch.manual_seed(0)
    if noise:
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0.0, noise)
    opt = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=2e-2)
    batch = [encode_example(tok, [{"role": "user", "content": q}], a, 128) for q, a in QA]
    for _ in range(train_steps):
        for ids, start in batch:
            labels = torch.tensor([[-100] * start + ids[start:]])
            loss = peft_model(input_ids=torch.tensor([ids]), labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    peft_model.save_pretrained(str(out))
    return str(out)


@pytest.fixture(scope="module")
def world(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Snapshots (new and earlier), a small fixed set, a trained and a broken adapter."""
    root = tmp_path_factory.mktemp("eval-world")
    records = root / "records.jsonl"
    records.write_text(
        "\n".join(
            json.dumps({"id": i, "instruction": q, "context": "", "response": a, "source": s})
            for i, (q, a, s) in enumerate(
                [
                    (QA[6][0], QA[6][1], "user_oriented_instructions"),
                    (QA[7][0], QA[7][1], "user_oriented_instructions"),
                    ("Say hi.", "Hello there.", "user_oriented_instructions"),
                ]
            )
        )
    )
    return {
        "new": str(save_snapshot(root / "snap-2", QA[:4], "new")),
        "earlier": str(save_snapshot(root / "snap-1", QA[4:6], "old")),
        "fixed": str(cache_fixed_benchmark(root / "fixed", source=records)),
        "trained": _adapter(root / "trained", train_steps=3),
        "broken": _adapter(root / "broken", noise=0.5),
    }


@pytest.fixture
def sqlite_env(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", sqlite_db.url.render_as_string(False))
    return sqlite_db


def _artifact(key: str) -> dict[str, Any] | None:
    """The newest artifact with `key`, read over the REST API (full body: this server rejects
    the client's None defaults for offset and run filters)."""
    body = {
        "artifacts": {"key": {"any_": [key]}},
        "flow_runs": {},
        "task_runs": {},
        "limit": 1,
        "offset": 0,
        "sort": "UPDATED_DESC",
    }
    with get_client(sync_client=True) as client:
        found = client._client.post("/artifacts/filter", json=body).json()
    return found[0] if found else None


def test_first_version_trained_adapter_is_promoted(
    harness: None, world: dict[str, Any], sqlite_env: Database
) -> None:
    out = evaluate_candidate_flow(
        PRESET,
        world["trained"],
        world["new"],
        teacher_preset=TEACHER,
        config=EvaluateConfig(scoring=FAST, n_resamples=200, fixed_set_path=world["fixed"]),
    )
    gate = out.gate
    assert gate.rule == "first_version" and gate.reference == "base"
    assert out.decision == "promote" and out.promote, gate.reasons
    assert out.set_names == {"test:snap-2": NEW, "fixed": "fixed benchmark"}
    assert out.new_set == "test:snap-2" and out.new_set_name == NEW
    assert out.detail == "; ".join(out.reasons)  # in full, never cut
    # Metrics by readable name (what the card and summary show), the teacher's beside them.
    m = out.metrics
    assert m["candidate"][NEW]["perplexity"] < m["base"][NEW]["perplexity"]
    # All the card shows (exact/answer match only exist on checkable tasks; this set has none).
    shown = set(CARD_METRICS) - {"exact_match", "answer_match"}
    assert shown <= set(m["candidate"]["fixed benchmark"])
    assert m["candidate"][NEW]["teacher_perplexity"] == m["teacher"][NEW]["perplexity"]
    assert m["candidate"][NEW]["size_vs_teacher"] == pytest.approx(
        load_results(out.results_paths["candidate"])["weight_bytes"]
        / load_results(out.results_paths["teacher"])["weight_bytes"]
    )
    assert out.teacher.startswith(f"vs teacher on {NEW}: ROUGE-L kept")
    assert set(out.results_paths) == {"candidate", "base", "teacher"}
    report = Path(out.report_path)
    text = report.read_text()
    for png in ("teacher.png", "history.png", "deltas.png", "entropy.png"):
        assert (report.parent / png).stat().st_size > 1000
    assert text.count("](data:image/png;base64,") == 4 and ".png)" not in text
    assert "## Against the teacher" in text and "test:" not in text
    with sqlite_env.transaction() as session:
        rows = repo.list_evaluations(session=session, student=PRESET)
    assert sorted(r.id for r in rows) == sorted(out.evaluation_ids)
    # Stored under stable keys; the teacher is a yardstick, not a version of this student.
    assert {(r.label, r.eval_set) for r in rows} == {
        (label, s) for label in ("candidate", "base") for s in ("test:snap-2", "fixed")
    }
    markdown = _artifact("evaluation-tiny-llama-student")
    assert markdown is not None and markdown["data"] == text  # pictures and all
    table = _artifact("evaluation-metrics-tiny-llama-student")
    assert table is not None and NEW in str(table["data"]) and "teacher" in str(table["data"])


def test_regression_against_stable_is_rejected_and_stored(
    harness: None, world: dict[str, Any], sqlite_env: Database
) -> None:
    with sqlite_env.transaction(write=True) as session:
        stable = ModelVersion(student=PRESET, version=1, base_model="local", status="published")
        cand = ModelVersion(student=PRESET, version=2, base_model="local")
        session.add_all([stable, cand])
        session.flush()
        ids = (stable.id, cand.id)
    out = evaluate_candidate_flow(
        PRESET,
        world["broken"],
        world["new"],
        stable_adapter_dir=world["trained"],
        earlier_test_paths=[world["earlier"]],
        stable_version_id=ids[0],
        candidate_version_id=ids[1],
        teacher_preset=TEACHER,
        config=EvaluateConfig(
            scoring=FAST,
            n_resamples=200,
            fixed_set_path=world["fixed"],
            gate=GatePolicy(min_teacher_share=0.5),
        ),
    )
    gate = out.gate
    assert out.decision == "reject" and gate.rule == "stable"
    failed = {c.name for c in gate.checks if not c.passed}
    assert "perplexity_no_regression[test:snap-1]" in failed
    assert "perplexity_no_regression[test:snap-2]" in failed
    assert any(r.startswith("perplexity on earlier test split (snap-1): ") for r in gate.reasons)
    assert {c.name for c in gate.checks} >= {
        f"keeps_teacher_rougeL[{s}]" for s in ("test:snap-2", "test:snap-1", "fixed")
    }
    with sqlite_env.transaction() as session:
        version = session.get(ModelVersion, ids[1])
        assert version is not None and version.status == "rejected"
        assert version.gate == gate.to_dict()
        assert set(version.metrics) == {"test:snap-2", "test:snap-1", "fixed"}
        labels = {r.label for r in repo.list_evaluations(session=session, student=PRESET)}
    assert labels == {"candidate", "stable", "base"}
    assert "stable" in Path(out.report_path).read_text()


def test_monthly_reevaluation_covers_every_live_version(
    harness: None, world: dict[str, Any], sqlite_env: Database
) -> None:
    with sqlite_env.transaction(write=True) as session:
        snap = DatasetSnapshot(
            fingerprint="f" * 64, watermark=1, code_version="t", path=world["new"]
        )
        run = TrainingRun(student=PRESET, teacher="t", strategy="sft", output_dir=world["trained"])
        session.add_all([snap, run])
        session.flush()
        session.add_all(
            [
                ModelVersion(
                    student=PRESET,
                    version=1,
                    base_model="local",
                    status="published",
                    training_run_id=run.id,
                    snapshot_id=snap.id,
                ),
                ModelVersion(student=PRESET, version=2, base_model="local", status="rejected"),
            ]
        )
    out = reevaluate_live_versions_flow(EvaluateConfig(scoring=FAST, fixed_set_path=world["fixed"]))
    assert out.evaluated == 2  # one live version on two sets
    with sqlite_env.transaction() as session:
        rows = repo.list_evaluations(session=session, student=PRESET, label="live")
    assert {r.eval_set for r in rows} == {"test:snap-2", "fixed"}
    assert all(r.model_version_id is not None and r.metrics["perplexity"] > 1 for r in rows)


def test_cli_caches_the_fixed_set_and_evaluates_a_model(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    assert main(["evaluate", "fixed-set", "--limit", "5", "--out", str(tmp_path / "fx")]) == 0
    assert "5 examples" in capsys.readouterr().out
    out = tmp_path / "r.json"
    argv = ["evaluate", "model", "--preset", PRESET, "--adapter", world["trained"]]
    argv += ["--set", world["new"], "--out", str(out), "--max-new-tokens", "3", "--limit", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "snap-2: perplexity" in printed and f"all metrics in {out}" in printed
    metrics = json.loads(out.read_text())["sets"]["snap-2"]["metrics"]
    assert metrics["examples"] == 2 and metrics["perplexity"] > 1
