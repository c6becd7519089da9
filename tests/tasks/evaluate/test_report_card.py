"""The report (markdown, pictures embedded) and the model card section from the same results."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tasks.evaluate.card import CARD_METRICS, model_index, render_eval_section
from tasks.evaluate.compare import compare_files
from tasks.evaluate.gate import GatePolicy, decide
from tasks.evaluate.history import VersionScores, history_axis
from tasks.evaluate.report import write_report
from tasks.evaluate.run import load_results, metrics_by_set
from tasks.evaluate.text_metrics import bleu_sentence_stats
from tasks.evaluate.yardstick import card_fields, measure

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


NEW = "test:" + "a" * 64  # the stored key of a new test split: a snapshot fingerprint
NAMES = {NEW: "new test split (snapshot 3, 2026-11-30)", "fixed": "fixed benchmark"}


def _fake_results(path: Path, shift: float, weight_bytes: int = 80_000_000) -> str:
    """A results file shaped as evaluate_model writes it, with hand-made numbers."""
    hyps = WORSE if shift < 0 else REFS
    stats = bleu_sentence_stats(hyps, REFS).tolist()
    metrics = {
        "perplexity": 8.0 + shift,
        "nll": 2.0 + shift,
        "bleu": 30.0 - shift,
        "rouge1": 0.6,
        "rouge2": 0.3,
        "rougeL": 0.55 - 0.1 * shift,
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
        for name in (NEW, "fixed")
    }
    path.write_text(json.dumps({"sets": sets, "weight_bytes": weight_bytes, "model": path.stem}))
    return str(path)


def _inputs(tmp_path: Path, teacher: bool = True) -> tuple[dict[str, str], dict, dict]:
    paths = {
        "candidate": _fake_results(tmp_path / "c.json", -0.5),
        "stable": _fake_results(tmp_path / "s.json", 0.0),
        "base": _fake_results(tmp_path / "b.json", 1.0),
    }
    if teacher:  # 0.55 + 0.1 * 1.5 = 0.70 ROUGE-L, 100 MB: the candidate keeps 0.60 / 0.70
        paths["teacher"] = _fake_results(tmp_path / "t.json", -1.5, weight_bytes=100_000_000)
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
        new_set=NEW,
        names=NAMES,
        teacher=m.get("teacher"),
        policy=GatePolicy(min_teacher_share=0.5) if teacher else None,
    )
    return paths, deltas, decision


def _pictures(text: str) -> dict[str, bytes]:
    """Title -> PNG bytes of every picture embedded in the markdown."""
    found = re.findall(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    return {title: base64.b64decode(data) for title, data in found}


def test_report_embeds_its_pictures_and_names_sets(tmp_path: Path) -> None:
    paths, deltas, decision = _inputs(tmp_path)
    history = [  # stored out of order: the plot puts versions in order
        VersionScores(v, s, {"perplexity": 9.0 - v, "rougeL": 0.3 + 0.05 * v}, stable=v == 3)
        for v in (3, 1, 2)
        for s in ("fixed", NEW)
    ]
    report = Path(
        write_report(
            tmp_path / "report",
            student="tiny",
            results_paths=paths,
            deltas=deltas,
            decision=decision,
            history=history,
            new_set=NEW,
        )
    )
    text = report.read_text()
    pictures = _pictures(text)
    assert set(pictures) == {
        "Quality kept against size",
        "Metrics by version",
        "Per-set deltas with 95% bootstrap CIs",
        "Token entropy distributions",
    }
    for png, data in zip(
        ("teacher.png", "history.png", "deltas.png", "entropy.png"), pictures.values(), strict=True
    ):
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
        assert (report.parent / png).read_bytes() == data  # the same picture is also a file
    assert ".png)" not in text  # no relative links: the Prefect artifact has no files beside it
    verdict = "PROMOTE" if decision.promote else "REJECT"
    assert text.startswith(f"# Evaluation of tiny: {verdict}")
    for reason in decision.reasons:  # every reason, in full
        assert f"- {reason}\n" in text
    # People read names, never the stored keys (the decision carries the names).
    assert "test:" not in text
    assert "| new test split (snapshot 3, 2026-11-30) | candidate | 7.5 |" in text
    # The teacher beside the candidate: 0.60 of 0.70 ROUGE-L kept, 80 of 100 MB.
    assert (
        "| new test split (snapshot 3, 2026-11-30) | candidate | 6.5 | 7.5 | 0.7 | 0.6 | 86% |"
        in text
    )
    assert "0.80× the teacher's" in text
    assert "ROUGE-L kept 86%" in text
    # Without stored history (no database yet) the plot shows this run's own numbers.
    again = write_report(
        tmp_path / "r2", student="tiny", results_paths=paths, deltas=deltas, decision=decision
    )
    assert "Metrics by version" in _pictures(Path(again).read_text())


def test_report_without_a_teacher_says_so(tmp_path: Path) -> None:
    paths, deltas, decision = _inputs(tmp_path, teacher=False)
    text = Path(
        write_report(
            tmp_path / "r", student="t", results_paths=paths, deltas=deltas, decision=decision
        )
    ).read_text()
    assert "No teacher was evaluated in this run." in text
    assert "Quality kept against size" not in _pictures(text)


def test_history_axis_orders_versions_and_marks_stable_and_candidate() -> None:
    current = {
        "candidate": {NEW: {"perplexity": 5.0}, "fixed": {"perplexity": 6.0}},
        "base": {NEW: {"perplexity": 20.0}, "fixed": {"perplexity": 21.0}},
    }
    versions = [
        VersionScores(3, "fixed", {"perplexity": 7.0}, stable=True),
        VersionScores(1, "fixed", {"perplexity": 9.0}),
        VersionScores(2, "fixed", {"perplexity": 8.0}),
        VersionScores(3, NEW, {"perplexity": 6.5}, stable=True),
    ]
    axis = history_axis(versions, current, ("perplexity",))
    assert axis.labels == ("base", "v1", "v2", "v3", "candidate")
    assert axis.labels[axis.stable or 0] == "v3"
    assert axis.values["perplexity"]["fixed"] == (21.0, 9.0, 8.0, 7.0, 6.0)
    assert axis.values["perplexity"][NEW] == (20.0, None, None, 6.5, 5.0)
    # No stored versions: this run's stable model stands between base and candidate.
    alone = history_axis([], {**current, "stable": {NEW: {"perplexity": 6.0}}}, ("perplexity",))
    assert alone.labels == ("base", "stable", "candidate") and alone.stable == 1


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
    assert by_set[NEW]["Perplexity"] == 7.5
    assert by_set[NEW]["BLEU"] == 30.5
    assert by_set[NEW]["ROUGE-L"] == 0.6
    assert "Expected calibration error" not in by_set["fixed"]
    assert yaml.safe_load(yaml.safe_dump(index)) == index  # valid YAML front matter
    gate = {"promote": True, "rule": "stable", "reasons": ["promote: all 5 checks passed"]}
    section = render_eval_section("tiny-student", metrics, gate)
    assert section.startswith("## Evaluation results")
    assert f"| {NEW} | 7.5 | 30.5 |" in section
    assert "**Release gate:** promoted" in section and "- promote: all 5 checks" in section
    assert "The teacher was not evaluated with this model." in section


def test_card_shows_the_teacher_beside_the_model(tmp_path: Path) -> None:
    cand = load_results(_fake_results(tmp_path / "c.json", -0.5))
    teacher = load_results(_fake_results(tmp_path / "t.json", -1.5, weight_bytes=100_000_000))
    fields = card_fields(measure(cand, teacher))
    metrics = {
        NAMES[k]: {**m, **fields[k]} for k, m in metrics_by_set(cand).items()
    }  # as the evaluation flow hands them to the publisher: readable names, teacher beside
    section = render_eval_section("tiny-student", metrics)
    assert "## Against the teacher" in section
    assert "0.80× the teacher's (80.0 MB vs 100.0 MB" in section
    assert "| new test split (snapshot 3, 2026-11-30) | 6.5 | 7.5 | 0.7 | 0.6 | 86% |" in section
    (picture,) = _pictures(section).values()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    # The teacher's numbers stay out of the model-index metadata (they are not this model's).
    results = model_index("tiny-student", metrics)["model-index"][0]["results"]
    # Exact/answer match exist only on checkable tasks, which these sets do not have.
    checkable_only = {"exact_match", "answer_match"}
    assert all(len(r["metrics"]) == len(set(CARD_METRICS) - checkable_only) for r in results)
    assert results[0]["metrics"][0] == {"type": "perplexity", "name": "Perplexity", "value": 7.5}
