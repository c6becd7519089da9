"""Evaluate one model (preset + optional adapter) on named eval sets; results go to JSON."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tasks.evaluate.config import EvalConfig
from tasks.evaluate.model_metrics import generate_answers, score_targets
from tasks.evaluate.sets import FIXED_SET_NAME, conversation, load_eval_set
from tasks.evaluate.text_metrics import bleu_sentence_stats, corpus_bleu, rouge_per_example
from tasks.evaluate.uncertainty import uncertainty_summary
from tasks.sampledata import answer_match, exact_match


def _uncertainty(config: EvalConfig, ent: list[float], conf: list[float], hit: Any) -> dict:
    return uncertainty_summary(
        ent,
        conf,
        hit,
        low_confidence=config.low_confidence,
        n_bins=config.ece_bins,
        spike_sigma=config.spike_sigma,
        spike_threshold=config.spike_threshold,
    )


def evaluate_dataset(
    model: Any, tokenizer: Any, dataset: Any, config: EvalConfig, label: str = "eval"
) -> dict:
    """Metrics, per-example records and token entropies of one model on one dataset."""
    rows = [dataset[i] for i in range(min(len(dataset), config.limit or len(dataset)))]
    pairs = [conversation(r) for r in rows]
    scores = score_targets(
        model,
        tokenizer,
        pairs,
        batch_size=config.batch_size,
        max_length=config.max_length,
        desc=f"scoring {label}",
    )
    hyps, gen_ent, gen_conf = generate_answers(
        model,
        tokenizer,
        [p for p, _ in pairs],
        batch_size=config.batch_size,
        max_new_tokens=config.max_new_tokens,
        max_length=config.max_length,
        desc=f"answering {label}",
    )
    refs = [a for _, a in pairs]
    rouge = rouge_per_example(hyps, refs)
    stats = bleu_sentence_stats(hyps, refs)
    n_tok = sum(s.n_tokens for s in scores)
    if n_tok == 0:
        raise ValueError("no answer tokens to score: every example was truncated away")
    nll = sum(s.nll_sum for s in scores) / n_tok  # token-weighted, not a mean of per-example ppl
    ent = [e for s in scores for e in s.entropies]
    conf = [c for s in scores for c in s.confidences]
    hit = [h for s in scores for h in s.correct]
    gen_flat_ent = [e for row in gen_ent for e in row]
    gen_flat_conf = [c for row in gen_conf for c in row]
    target_u = _uncertainty(config, ent, conf, hit)
    gen_u = _uncertainty(config, gen_flat_ent, gen_flat_conf, None)
    # Exact match only where an answer is exactly right or wrong (the checkable tasks).
    exact = [
        exact_match(hyp, ref) if row.get("checkable") else None
        for row, hyp, ref in zip(rows, hyps, refs, strict=True)
    ]
    judged = [e for e in exact if e is not None]
    matched = [
        answer_match(hyp, ref) if row.get("checkable") else None
        for row, hyp, ref in zip(rows, hyps, refs, strict=True)
    ]
    found = [m for m in matched if m is not None]
    metrics = {
        "examples": float(len(rows)),
        "tokens": float(n_tok),
        "nll": nll,
        "perplexity": math.exp(nll),
        "bleu": corpus_bleu(hyps, refs),
        **{k: sum(v) / len(v) for k, v in rouge.items()},
        **{k: v for k, v in target_u.items() if k != "tokens"},
        **{f"gen_{k}": v for k, v in gen_u.items()},
        **({"exact_match": sum(judged) / len(judged)} if judged else {}),
        **({"answer_match": sum(found) / len(found)} if found else {}),
    }
    examples = [
        {
            "id": str(row.get("id", i)),
            "nll": s.nll_sum / s.n_tokens if s.n_tokens else float("nan"),
            "n_tokens": s.n_tokens,
            "hypothesis": hyp,
            "reference": ref,
            "rougeL": rouge["rougeL"][i],
            "exact": exact[i],
            "answer": matched[i],
            "bleu_stats": [int(x) for x in stats[i]],
        }
        for i, (row, s, hyp, ref) in enumerate(zip(rows, scores, hyps, refs, strict=True))
    ]
    return {
        "metrics": metrics,
        "examples": examples,
        "token_entropies": [round(e, 5) for e in ent],
        "gen_token_entropies": [round(e, 5) for e in gen_flat_ent],
    }


def config_for_set(config: EvalConfig, key: str) -> EvalConfig:
    """The settings one set is scored with: the fixed benchmark takes `fixed_limit`."""
    return replace(config, limit=config.fixed_limit) if key == FIXED_SET_NAME else config


def _short_set_name(key: str) -> str:
    """A progress-bar label for a set key: `test:<fingerprint>` is cut to 8 hex digits."""
    if key.startswith("test:"):
        return f"test split {key[5:13]}"
    return "fixed benchmark" if key == "fixed" else key


def evaluate_model(
    preset: str,
    adapter_dir: str | None,
    eval_sets: dict[str, str],
    out_path: str,
    config: EvalConfig | None = None,
    device: str | None = None,
    cache_dir: str | None = None,
) -> str:
    """Evaluate one model on every set, write results JSON; returns its path.

    With `cache_dir`, a set this model already scored with the same settings is read back
    instead of scored; the model is loaded only when some set is new to it.
    """
    import torch

    from tasks.evaluate.cache import (
        ResultCache,
        cache_key,
        model_identity,
        set_fingerprint,
        weight_file_bytes,
    )

    config = config or EvalConfig()
    started = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache = ResultCache(cache_dir)
    identity = model_identity(preset, adapter_dir)
    loaded: tuple[Any, Any] | None = None
    sets: dict[str, Any] = {}
    cached: list[str] = []
    for name, path in eval_sets.items():
        dataset = load_eval_set(path)
        set_config = config_for_set(config, name)
        key = cache_key(identity, set_fingerprint(dataset, set_config.limit), set_config, device)
        hit = cache.get(key)
        if hit is not None:
            sets[name] = hit
            cached.append(name)
            continue
        if loaded is None:
            from tasks.models.load import load_model_and_tokenizer

            adapter = Path(adapter_dir) if adapter_dir else None
            loaded = load_model_and_tokenizer(preset, adapter_dir=adapter, device=device)
        model, tokenizer = loaded
        label = f"{preset}{' + LoRA' if adapter_dir else ''} on {_short_set_name(name)}"
        sets[name] = evaluate_dataset(model, tokenizer, dataset, set_config, label)
        cache.put(key, sets[name])
    result = {
        "preset": preset,
        "adapter_dir": adapter_dir,
        "model": identity,
        "weight_bytes": weight_file_bytes(preset),
        "eval_sets": eval_sets,
        "config": asdict(config),
        "sets": sets,
        "cached_sets": cached,
        "wall_s": time.perf_counter() - started,
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    return str(out.resolve())


def load_results(path: str | Path) -> dict[str, Any]:
    """A results JSON written by `evaluate_model`."""
    return json.loads(Path(path).read_text())


def metrics_by_set(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Eval set -> metric -> value, from a results dict."""
    return {name: dict(s["metrics"]) for name, s in results["sets"].items()}
