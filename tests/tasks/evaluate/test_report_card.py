"""The report (markdown + PNGs) and the model card section from the same results files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tasks.evaluate.card import model_index, render_eval_section
from tasks.evaluate.compare import compare_files
from tasks.evaluate.gate import decide
from tasks.evaluate.report import write_report
from tasks.evaluate.run import load_results, metrics_by_set
from tasks.evaluate.text_metrics import bleu_sentence_stats

REFS = ["the cat sat on the mat", "a dog ran far away", "blue is a color"]
WORSE = ["the cat sat on a mat", "a dog ran away", "blue is nice"]


def _example(i: int, hyp: str, ref: str, stats: list[int], shift: float) -> dict[str, Any]:
    return {
        "id": str(i),
        "nll": 2.0 + shift + 0.1 * i,
        "n_tokens": 5,
        "hypothesis": hyp,
        "reference": ref,
        "rougeL": 0.5 - shift * 0.1 + 0.05 * i,
        "bleu_stats": stats,
    }


def _fake_results(path: Path, shift: float) -> str:
    """A results file shaped as evaluate_model writes it, with hand-made numbers."""
    hyps = WORSE if shift < 0 else REFS
    stats = bleu_sentence_stats(hyps, REFS).tolist()
    metrics = {
        "perplexity": 8.0 + shift,
        "nll": 2.0 + shift,
        "bleu": 30.0 - shift,
        "rouge1": 0.6,
        "rouge2": 0.3,
        "rougeL": 0.55,
        "mean_entropy": 2.0 + shift,
        "low_conf_share": 0.4,
        "ece": 0.1,
        "entropy_spikes": 1.0,
    }
    sets = {
        name: {
            "metrics": dict(metrics),
            "examples": [
                _example(i, h, r, stats[i], shift)
                for i, (h, r) in enumerate(zip(hyps, REFS, strict=True))
            ],
            "token_entropies": [2.0 + shift + 0.1 * k for k in range(20)],
        }
        for name in ("test:a", "fixed")
    }
    path.write_text(json.dumps({"sets": sets}))
    return str(path)


def _inputs(tmp_path: Path) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    paths = {
        "candidate": _fake_results(tmp_path / "c.json", -0.5),
        "stable": _fake_results(tmp_path / "s.json", 0.0),
        "base": _fake_results(tmp_path / "b.json", 1.0),
    }
    deltas = {
        ref: compare_files(paths["candidate"], paths[ref], n_resamples=100)
        for ref in ("stable", "base")
    }
    m = {k: metrics_by_set(load_results(p)) for k, p in paths.items()}
    decision = decide(
        m["candidate"],
        base=m["base"],
        stable=m["stable"],
        deltas=deltas["stable"],
        new_set="test:a",
    )
    return paths, deltas, decision.to_dict()


def test_report_has_plots_and_references_them(tmp_path: Path) -> None:
    paths, deltas, decision = _inputs(tmp_path)
    history = [
        {"version": v, "label": "live", "eval_set": s, "metrics": {"perplexity": 9.0 - v}}
        for v in (1, 2, 3)
        for s in ("fixed", "test:a")
    ]
    report = Path(
        write_report(
            tmp_path / "report",
            student="tiny",
            results_paths=paths,
            deltas=deltas,
            decision=decision,
            history=history,
        )
    )
    text = report.read_text()
    for png in ("history.png", "deltas.png", "entropy.png"):
        f = report.parent / png
        assert f.is_file() and f.stat().st_size > 1000
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in text
    verdict = "PROMOTE" if decision["promote"] else "REJECT"
    assert text.startswith(f"# Evaluation of tiny: {verdict}")
    assert decision["reasons"][0] in text
    assert "| test:a | candidate | 7.5 |" in text
    # Without history (no database yet) the plot falls back to this run's own numbers.
    again = write_report(
        tmp_path / "r2", student="tiny", results_paths=paths, deltas=deltas, decision=decision
    )
    assert (Path(again).parent / "history.png").stat().st_size > 1000


def test_model_index_and_card_section_use_the_same_numbers(tmp_path: Path) -> None:
    metrics = metrics_by_set(load_results(_fake_results(tmp_path / "c.json", -0.5)))
    metrics["fixed"]["ece"] = float("nan")  # non-finite values are left out, not written as NaN
    index = model_index("tiny-student", metrics)
    (entry,) = index["model-index"]
    assert entry["name"] == "tiny-student"
    by_set = {
        r["dataset"]["name"]: {m["name"]: m["value"] for m in r["metrics"]}
        for r in entry["results"]
    }
    assert by_set["test:a"]["Perplexity"] == 7.5
    assert by_set["test:a"]["BLEU"] == 30.5
    assert by_set["test:a"]["ROUGE-L"] == 0.55
    assert "Expected calibration error" not in by_set["fixed"]
    assert yaml.safe_load(yaml.safe_dump(index)) == index  # valid YAML front matter
    gate = {"promote": True, "rule": "stable", "reasons": ["promote: all 5 checks passed"]}
    section = render_eval_section("tiny-student", metrics, gate)
    assert section.startswith("## Evaluation results")
    assert "| test:a | 7.5 | 30.5 |" in section
    assert "**Release gate:** promoted" in section and "- promote: all 5 checks" in section
