"""Corpus BLEU (sacrebleu) and ROUGE-1/2/L F1 (rouge-score, stemmed), computed offline."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references differ in length: {len(hypotheses)} != {len(references)}"
        )
    if not hypotheses:
        raise ValueError("no hypotheses: a text metric needs at least one example")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level BLEU (0-100) with sacrebleu's defaults (13a tokenizer, exp smoothing)."""
    _check_pairs(hypotheses, references)
    return float(BLEU().corpus_score(list(hypotheses), [list(references)]).score)


def bleu_sentence_stats(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-example BLEU sufficient statistics; sums over any subset give that subset's BLEU."""
    _check_pairs(hypotheses, references)
    # sacrebleu's own paired bootstrap works from these statistics; so do we (bootstrap.py).
    stats = BLEU()._extract_corpus_statistics(list(hypotheses), [list(references)])
    return np.asarray(stats, dtype=np.int64)


def bleu_from_stats(stats_sum: np.ndarray) -> float:
    """BLEU (0-100) from summed sentence statistics (see `bleu_sentence_stats`)."""
    return float(BLEU()._compute_score_from_stats([int(x) for x in stats_sum]).score)


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


def rouge_per_example(
    hypotheses: Sequence[str], references: Sequence[str]
) -> dict[str, list[float]]:
    """ROUGE-1/2/L F1 per example (stemmed), keyed rouge1/rouge2/rougeL."""
    _check_pairs(hypotheses, references)
    out: dict[str, list[float]] = {key: [] for key in ROUGE_KEYS}
    for hyp, ref in zip(hypotheses, references, strict=True):
        # rouge-score's signature is score(target, prediction).
        scores = _scorer().score(ref, hyp)
        for key in ROUGE_KEYS:
            out[key].append(float(scores[key].fmeasure))
    return out


def corpus_rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 over examples (the usual corpus figure), keyed rouge1/2/L."""
    per = rouge_per_example(hypotheses, references)
    return {key: float(np.mean(values)) for key, values in per.items()}
